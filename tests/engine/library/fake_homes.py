"""A home folder with the model folders of A1111, ComfyUI (with extra_model_paths.yaml), InvokeAI
and the Hugging Face cache, plus the app's folder, a user folder and LATENTDESK_MODEL_PATH, laid
out as those tools leave them, with what the library must find in each."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.engine.library.fake_models import (
    controlnet_shapes,
    diffusers_files,
    hf_cache_repo,
    lora_shapes,
    sd2_shapes,
    sdxl_lora_shapes,
    sdxl_shapes,
    vae_shapes,
    write_diffusers_folder,
    write_header_only,
    write_small,
    write_tiny_sd1,
    write_torch_file,
)

HF_REVISION = "39593d5650112b4cc580433f6b0435385882d819"


@dataclass(frozen=True)
class Expected:
    name: str
    kind: str
    family: str | None
    inpainting: bool
    source: str
    problem: str = ""  # how the problem starts; "" for none


@dataclass
class FakeHome:
    root: Path  # everything lives below it: home, app data, outside folders
    home: Path
    models_dir: Path
    user_folder: Path
    env_folder: Path
    shared: Path  # outside home, named by extra_model_paths.yaml
    env: dict[str, str] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)  # by path as the scan gives it

    def expect(
        self,
        path: Path,
        kind: str,
        family: str | None,
        source: str,
        *,
        inpainting: bool = False,
        problem: str = "",
        name: str | None = None,
    ) -> Path:
        name = name or (path.name if path.is_dir() else path.stem)
        self.expected[str(path)] = Expected(name, kind, family, inpainting, source, problem)
        return path

    @property
    def scanned_roots(self) -> list[Path]:
        return [self.home, self.models_dir, self.user_folder, self.env_folder, self.shared]


def build_fake_home(root: Path) -> FakeHome:
    import torch

    fh = FakeHome(
        root=root,
        home=root / "home",
        models_dir=root / "appdata" / "models",
        user_folder=root / "my-models",
        env_folder=root / "env-models",
        shared=root / "shared-models",
    )
    fh.env = {"LATENTDESK_MODEL_PATH": f"{fh.env_folder}{os.pathsep}{root / 'gone'}"}
    ckpt = "checkpoint"

    # The app's own folder, a folder the person added, one from the environment.
    fh.expect(write_tiny_sd1(fh.models_dir / "v1-5-pruned-emaonly.safetensors"), ckpt, "sd1", "app")
    portrait = write_tiny_sd1(fh.user_folder / "portraits" / "realistic.safetensors", seed=1)
    fh.expect(portrait, ckpt, "sd1", "user")
    fh.expect(write_tiny_sd1(fh.env_folder / "anime.ckpt", seed=2), ckpt, "sd1", "env")

    # A1111.
    webui = fh.home / "stable-diffusion-webui"
    ckpts = webui / "models" / "Stable-diffusion"
    ckpts.mkdir(parents=True)
    (ckpts / "Put Stable Diffusion checkpoints here.txt").write_text("")
    inpaint = write_tiny_sd1(ckpts / "sd-v1-5-inpainting.ckpt", seed=3, inpainting=True)
    fh.expect(inpaint, ckpt, "sd1", "a1111", inpainting=True)
    xl = write_header_only(sdxl_shapes(), ckpts / "SDXL" / "sd_xl_base_1.0.safetensors")
    fh.expect(xl, ckpt, "sdxl", "a1111", problem="SDXL: not supported yet")
    sd2 = write_header_only(sd2_shapes(), ckpts / "v2-1_768-ema-pruned.safetensors")
    fh.expect(sd2, ckpt, "sd2", "a1111", problem="SD 2.x: not supported yet")
    # Misfiled: a LoRA among the checkpoints is still a LoRA.
    fh.expect(
        write_small(lora_shapes(), ckpts / "detail-tweaker.safetensors"), "lora", "sd1", "a1111"
    )
    xl_lora = write_small(sdxl_lora_shapes(), webui / "models" / "Lora" / "xl-style.safetensors")
    fh.expect(xl_lora, "lora", "sdxl", "a1111")
    vae = webui / "models" / "VAE" / "vae-ft-mse-840000-ema-pruned.safetensors"
    fh.expect(write_header_only(vae_shapes(), vae), "vae", None, "a1111")
    emb = write_small({"emb_params": (8, 768)}, webui / "embeddings" / "EasyNegative.safetensors")
    fh.expect(emb, "embedding", "sd1", "a1111")
    old = {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(2, 768)}}
    old_emb = write_torch_file(old, webui / "embeddings" / "bad-hands-5.pt")
    fh.expect(old_emb, "embedding", "sd1", "a1111")

    # ComfyUI, whose extra_model_paths.yaml names the A1111 folders (found once, as A1111's)
    # and a shared folder outside home.
    comfy = fh.home / "ComfyUI"
    dream = write_tiny_sd1(comfy / "models" / "checkpoints" / "dreamshaper_8.safetensors", seed=4)
    fh.expect(dream, ckpt, "sd1", "comfyui")
    (comfy / "models" / "loras").mkdir(parents=True)
    control = fh.shared / "controlnet" / "control_v11p_sd15_canny.safetensors"
    fh.expect(write_header_only(controlnet_shapes(), control), "controlnet", "sd1", "comfyui")
    merge = write_tiny_sd1(fh.shared / "more checkpoints" / "merge.safetensors", seed=5)
    fh.expect(merge, ckpt, "sd1", "comfyui")
    (comfy / "extra_model_paths.yaml").write_text(
        "a111:\n"
        "    base_path: ../stable-diffusion-webui/\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    configs: models/Stable-diffusion\n"
        "    vae: models/VAE\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    upscale_models: models/ESRGAN\n"
        "    embeddings: embeddings\n"
        "shared:\n"
        f"    base_path: {fh.shared}\n"
        "    is_default: true\n"
        "    checkpoints: |\n"
        "        more checkpoints\n"
        "    controlnet: controlnet/\n"
    )

    # InvokeAI: models/<base>/<type>/, diffusers folders among single files.
    invoke = fh.home / "invokeai" / "models"
    inpaint_folder = write_diffusers_folder(
        invoke / "sd-1" / "main" / "stable-diffusion-inpainting",
        pipeline="StableDiffusionInpaintPipeline",
        in_channels=9,
    )
    fh.expect(inpaint_folder, ckpt, "sd1", "invokeai", inpainting=True)
    xl_folder = write_diffusers_folder(
        invoke / "sdxl" / "main" / "sdxl-base", context=2048, xl=True
    )
    fh.expect(xl_folder, ckpt, "sdxl", "invokeai", problem="SDXL: not supported yet")
    fh.expect(
        write_small(lora_shapes(), invoke / "sd-1" / "lora" / "ink.safetensors"),
        "lora",
        "sd1",
        "invokeai",
    )

    # The Hugging Face cache: a diffusers repo whose snapshot also holds the single file, and
    # an old snapshot no ref points to (not listed).
    hub = fh.home / ".cache" / "huggingface" / "hub"
    staging = root / "staging"
    files = diffusers_files(staging / "sd15")
    files["v1-5-pruned-emaonly.safetensors"] = write_tiny_sd1(staging / "single.safetensors", 6)
    repo_id = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    snapshot = hf_cache_repo(hub, repo_id, files, HF_REVISION)
    fh.expect(snapshot, ckpt, "sd1", "hf-cache", name="stable-diffusion-v1-5")
    fh.expect(snapshot / "v1-5-pruned-emaonly.safetensors", ckpt, "sd1", "hf-cache")
    write_diffusers_folder(snapshot.parent / ("0" * 40))
    return fh
