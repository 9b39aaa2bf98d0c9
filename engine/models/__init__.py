"""The networks: UNet, VAE (AutoencoderKL); attribute names mirror the CompVis checkpoint keys."""
