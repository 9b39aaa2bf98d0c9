"""Model files and install trees for the library tests, in the real key layouts.

Tiny SD 1.x checkpoints are real (tests/factories.py). Files of families and kinds the tests
only classify (SD 2.x, SDXL, ControlNet, a VAE) are *header-only* safetensors: a valid header
with the real key names and shapes from tests/data/checkpoint-keys, where every tensor has zero
bytes of data (``data_offsets`` [0, 0]). A header reader sees exactly what a real file shows it;
a loader would refuse the file. LoRAs and embeddings are small enough to be written whole.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.factories import (
    UNET_PREFIX,
    VAE_PREFIX,
    full_sd1_shapes,
    reference_shapes,
    tiny_sd1_state_dict,
    write_checkpoint,
)

Shapes = Mapping[str, tuple[int, ...]]
LORA_RANK = 4


# --- key layouts --------------------------------------------------------------------------------


def sd1_shapes(inpainting: bool = False, unet: str | None = None) -> dict[str, tuple[int, ...]]:
    return full_sd1_shapes(unet or ("UNET-v1-Inpainting" if inpainting else "UNET-v1-SD"))


def sd2_shapes(inpainting: bool = False) -> dict[str, tuple[int, ...]]:
    unet = "UNET-v2-Inpainting" if inpainting else "UNET-v2-SD"
    return (
        reference_shapes(unet, UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-v2-SD", "cond_stage_model.model.")
    )


def sdxl_shapes() -> dict[str, tuple[int, ...]]:
    return (
        reference_shapes("UNET-XL-SD", UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-v1-SD", "conditioner.embedders.0.transformer.text_model.")
        | reference_shapes("CLIP-XL-SD", "conditioner.embedders.1.model.")
    )


def sdxl_refiner_shapes() -> dict[str, tuple[int, ...]]:
    return (
        reference_shapes("UNET-XL-Refiner", UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-XL-SD", "conditioner.embedders.0.model.")
    )


def lora_shapes(alpha: bool = True) -> dict[str, tuple[int, ...]]:
    """kohya's SD1 LoRA (UNet and text encoder), the free rank set to LORA_RANK."""
    names = ("LoRA-v1A-UNET", "LoRA-v1A-CLIP") if alpha else ("LoRA-v1-UNET", "LoRA-v1-CLIP")
    shapes = reference_shapes(names[0]) | reference_shapes(names[1])
    return {k: tuple(LORA_RANK if d == -1 else d for d in s) for k, s in shapes.items()}


def sdxl_lora_shapes() -> dict[str, tuple[int, ...]]:
    """kohya's SDXL LoRA naming: two text encoders (te1, te2), context width 2048."""
    r = LORA_RANK
    attn = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    return {
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (r, 768),
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": (768, r),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (r, 1280),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": (1280, r),
        f"{attn}.lora_down.weight": (r, 2048),
        f"{attn}.lora_up.weight": (640, r),
    }


def peft_lora_shapes() -> dict[str, tuple[int, ...]]:
    """diffusers/PEFT naming of an SD1 LoRA."""
    k = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    return {f"{k}.lora_A.weight": (LORA_RANK, 768), f"{k}.lora_B.weight": (320, LORA_RANK)}


def controlnet_shapes() -> dict[str, tuple[int, ...]]:
    return reference_shapes("ControlNet-v1-SD", "control_model.")


def diffusers_controlnet_shapes() -> dict[str, tuple[int, ...]]:
    k = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    return {
        "controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
        "controlnet_down_blocks.0.weight": (320, 320, 1, 1),
        "conv_in.weight": (320, 4, 3, 3),
        k: (320, 768),
    }


def vae_shapes(prefix: str = "") -> dict[str, tuple[int, ...]]:
    return reference_shapes("VAE-v1-SD", prefix)


# --- files ------------------------------------------------------------------------------------


def write_header_only(shapes: Shapes, path: Path, dtype: str = "F16") -> Path:
    """A safetensors file whose header declares ``shapes`` and whose tensors hold no bytes."""
    header = {
        k: {"dtype": dtype, "shape": list(s), "data_offsets": [0, 0]} for k, s in shapes.items()
    }
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def write_small(shapes: Shapes, path: Path) -> Path:
    """A real safetensors file with zero-filled float16 tensors (for small files only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(s, dtype=np.float16) for k, s in shapes.items()}, str(path))
    return path


def write_tiny_sd1(path: Path, seed: int = 0, inpainting: bool = False) -> Path:
    """A real, loadable tiny SD 1.x checkpoint (.safetensors or a torch zip .ckpt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_checkpoint(tiny_sd1_state_dict(seed=seed, inpainting=inpainting), path)


def write_torch_file(obj: object, path: Path, legacy: bool = False) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


class RunsCode:
    """Unpickling this creates ``marker``: what a hostile checkpoint would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def write_hostile_ckpt(path: Path, marker: Path) -> Path:
    """A zip-format torch checkpoint whose data.pkl creates ``marker`` when unpickled, placed
    before the weights so that it runs before anything could fail."""
    import torch

    weights = {k: torch.zeros(1) for k in ("model.diffusion_model.input_blocks.0.0.weight",)}
    return write_torch_file({"payload": RunsCode(marker), "state_dict": weights}, path)


def unpickle_carelessly(path: Path) -> None:
    """What a careless tool does with a .ckpt: plain pickle.loads of its data.pkl."""

    class Loader(pickle.Unpickler):
        def persistent_load(self, pid):
            return None

    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        try:
            Loader(io.BytesIO(archive.read(name))).load()
        except Exception:  # noqa: BLE001 - the payload has run by then; the rest may not fit
            pass


# --- diffusers folders and the HF cache ---------------------------------------------------------


def write_diffusers_folder(
    folder: Path,
    *,
    pipeline: str = "StableDiffusionPipeline",
    in_channels: int = 4,
    context: int = 768,
    xl: bool = False,
    weights: bool = True,
) -> Path:
    """model_index.json, configs and (header-only) weight files, as save_pretrained lays out."""
    _write_json(folder / "model_index.json", {"_class_name": pipeline, "unet": ["diffusers", "x"]})
    unet = {"_class_name": "UNet2DConditionModel", "in_channels": in_channels}
    unet["cross_attention_dim"] = context
    if xl:
        unet["addition_embed_type"] = "text_time"
    _write_json(folder / "unet" / "config.json", unet)
    _write_json(folder / "vae" / "config.json", {"_class_name": "AutoencoderKL"})
    _write_json(folder / "text_encoder" / "config.json", {"architectures": ["CLIPTextModel"]})
    parts = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model"}
    parts["text_encoder"] = "model"
    if xl:
        _write_json(folder / "text_encoder_2" / "config.json", {})
        parts["text_encoder_2"] = "model"
    if weights:
        for part, stem in parts.items():
            write_header_only({"x": (1,)}, folder / part / f"{stem}.safetensors")
    return folder


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def hf_cache_repo(hub: Path, repo_id: str, files: Mapping[str, Path], revision: str) -> Path:
    """``models--org--name`` as huggingface_hub leaves it: the bytes in ``blobs/`` (named by
    hash), ``snapshots/<revision>/<file>`` relative links to them, ``refs/main``. ``files`` maps
    repo file names to files whose bytes to store."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for i, (name, source) in enumerate(sorted(files.items())):
        blob = repo / "blobs" / f"{revision[:8]}{i:032x}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(source.read_bytes())
        link = repo / "snapshots" / revision / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo / "snapshots" / revision


def diffusers_files(tmp: Path, **kwargs) -> dict[str, Path]:
    """The files of a diffusers folder, by their names in the repo (for ``hf_cache_repo``)."""
    folder = write_diffusers_folder(tmp, **kwargs)
    return {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}


# --- a snapshot of a tree, to prove nothing was written ----------------------------------------


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): kind, size, mtime, and a folder's
    listing. Equal before and after a scan means nothing was written, renamed or created."""
    state: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            st = path.lstat()
            link = os.readlink(path) if path.is_symlink() else ""
            state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, link)
        st = Path(folder).lstat()
        state[str(Path(folder).relative_to(root)) + "/"] = (st.st_mtime_ns, tuple(sorted(files)))
    return state
