"""Inpainting and outpainting.

Torch-free, for the app as well as the engine: ``masks`` (mask preparation), ``outpaint``
(canvas extension), ``region`` (the "only masked" crop), ``fill`` (masked content "fill"),
``prepare`` (request -> pictures, and the paste-back), ``settings`` (metadata keys), ``checks``
(request validation), ``mask_file`` and ``cli_args``. With torch, for the pipeline only:
``latents`` (masks in latent space, starting latents, the masked blend) and ``job`` (the hooks
``engine.pipeline`` calls).
"""
