"""Reading checkpoints (safetensors, ckpt, diffusers folders) and building models from them."""
