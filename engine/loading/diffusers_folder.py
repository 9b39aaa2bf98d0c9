"""Load a diffusers model folder as one state dict in the original single-file layout.

A diffusers folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``)
is renamed at load time, so the rest of the engine sees exactly what a ``.safetensors``
checkpoint of the same model would hold. The tokenizer folder is ignored: the app ships its own.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import (
    CorruptCheckpointError,
    MissingComponentError,
    NotACheckpointError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from engine.family import SD1
from engine.loading.checkpoint import check_weights, is_damaged_pickle, refusal_reason
from engine.loading.diffusers_keys import (
    convert_text_encoder_state_dict,
    convert_unet_state_dict,
    convert_vae_state_dict,
)

StateDict = dict[str, torch.Tensor]

# Context widths of the families this version cannot run: SD2.x, SDXL refiner, SDXL base.
_UNSUPPORTED_CONTEXT = {1024: "Stable Diffusion 2.x", 1280: "SDXL refiner", 2048: "SDXL"}


@dataclass(frozen=True)
class _Component:
    """One sub-folder of a diffusers folder and where its tensors go in the single-file layout."""

    folder: str
    label: str
    safetensors_name: str
    bin_name: str
    prefix: str
    convert: Callable[[Mapping[str, torch.Tensor]], StateDict]

    def candidate_names(self) -> list[str]:
        """Weight file names in order of preference: non-variant first, then fp16."""
        names = []
        for variant in (None, "fp16"):
            for base in (self.safetensors_name, self.bin_name):
                names.append(_add_variant(base, variant))
                names.append(_add_variant(f"{base}.index.json", variant))  # sharded weights
        return names


_COMPONENTS = (
    _Component(
        "unet",
        "UNet",
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bin",
        SD1.unet_prefix,
        convert_unet_state_dict,
    ),
    _Component(
        "vae",
        "VAE",
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bin",
        SD1.vae_prefix,
        convert_vae_state_dict,
    ),
    _Component(
        "text_encoder",
        "text encoder",
        "model.safetensors",
        "pytorch_model.bin",
        SD1.text_encoder_prefix + "text_model.",  # the layout most single-file SD1 files have
        convert_text_encoder_state_dict,
    ),
)


def _add_variant(name: str, variant: str | None) -> str:
    """diffusers/transformers put the variant before the last suffix: x.fp16.safetensors."""
    if variant is None:
        return name
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{variant}.{suffix}"


def is_diffusers_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder laid out by diffusers' ``save_pretrained`` (even an incomplete one)."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    if (folder / "model_index.json").is_file():
        return True
    return any((folder / part.folder / "config.json").is_file() for part in _COMPONENTS)


def load_diffusers_folder(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> StateDict:
    """Read a diffusers SD1.x folder into one state dict with the single-file prefixes.

    Keys are ``model.diffusion_model.*``, ``first_stage_model.*`` and
    ``cond_stage_model.transformer.text_model.*``, named as in the original CompVis checkpoints.
    Tensors keep the dtype they were saved in (an fp16 variant stays float16).
    """
    folder = Path(path)
    if not is_diffusers_folder(folder):
        raise NotACheckpointError(
            f"{folder} is not a diffusers model folder (it has no model_index.json and no "
            "unet/, vae/ or text_encoder/ with a config.json). Choose the folder that holds them."
        )
    _check_family(folder)
    files = {part.folder: _find_weights(folder, part) for part in _COMPONENTS}
    state: StateDict = {}
    for part in _COMPONENTS:
        weights = _read_weights(files[part.folder], device)
        for key, tensor in part.convert(weights).items():
            state[part.prefix + key] = tensor
    check_weights(state, folder.name)
    return state


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptCheckpointError(
            f"{path} cannot be read as JSON ({error}). Download the model folder again."
        ) from error
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path} is not a JSON object. Download the folder again.")
    return data


def _check_family(folder: Path) -> None:
    """Refuse SD2.x, SDXL and non-UNet pipelines before reading gigabytes of weights."""
    pipeline = str(_read_json(folder / "model_index.json").get("_class_name", ""))
    unet_config = _read_json(folder / "unet" / "config.json")
    context = unet_config.get("cross_attention_dim")
    if isinstance(context, list):  # per-block context widths: SDXL-style UNets only
        context = max(context)
    family = _UNSUPPORTED_CONTEXT.get(context) if isinstance(context, int) else None
    if (folder / "text_encoder_2").is_dir() or "XL" in pipeline:
        family = "SDXL"
    elif unet_config.get("addition_embed_type") == "text_time":
        family = "SDXL"
    elif not (folder / "unet").is_dir() and (folder / "transformer").is_dir():
        family = pipeline or "a transformer-based model (SD3, Flux, ...)"
    if family is not None:
        raise UnsupportedModelError(
            f"{folder.name} is a {family} model; Latentdesk runs Stable Diffusion 1.x models "
            "only. Choose an SD 1.x model (such as Stable Diffusion 1.5 or a fine-tune of it)."
        )


def _find_weights(folder: Path, part: _Component) -> Path:
    """The preferred weights file of one component, or MissingComponentError."""
    sub = folder / part.folder
    if not sub.is_dir():
        raise MissingComponentError(
            f"The model folder {folder} has no {part.folder}/ folder, so the {part.label} is "
            f"missing. Download the complete model (unet/, vae/ and text_encoder/ with their "
            "weights), or use a single-file .safetensors checkpoint instead."
        )
    for name in part.candidate_names():
        if (sub / name).is_file():
            return sub / name
    raise MissingComponentError(
        f"{sub} holds no weights for the {part.label} (expected {part.safetensors_name}, "
        f"{part.bin_name} or their fp16 variants). The download may be incomplete: download "
        "the model folder again."
    )


def _read_weights(path: Path, device: str | torch.device) -> StateDict:
    """One weights file, or every shard listed by a ``*.index.json``."""
    if path.name.endswith(".json"):
        weight_map = _read_json(path).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CorruptCheckpointError(f"{path} lists no weight files. Download it again.")
        state: StateDict = {}
        for shard in sorted(set(weight_map.values())):
            state.update(_read_weights(path.parent / shard, device))
        return state
    if path.suffix == ".safetensors":
        return _read_safetensors(path, device)
    return _read_pickle(path, device)


def _read_safetensors(path: Path, device: str | torch.device) -> StateDict:
    """Memory-mapped read: tensors are created straight on ``device`` from the mapped file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as file:
            return {key: file.get_tensor(key) for key in file.keys()}
    except FileNotFoundError as error:
        raise MissingComponentError(
            f"{path} is missing (a broken link in the model folder?). Download it again."
        ) from error
    except (SafetensorError, OSError) as error:
        raise CorruptCheckpointError(
            f"{path} is damaged or truncated ({error}). Download it again."
        ) from error


def _read_pickle(path: Path, device: str | torch.device) -> StateDict:
    """A PyTorch ``.bin`` read with the weights-only unpickler, which refuses to run code."""
    try:
        # mmap needs the zip format of torch.save; files from torch < 1.6 are read into memory.
        state = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except pickle.UnpicklingError as error:
        if is_damaged_pickle(error):
            raise CorruptCheckpointError(
                f"{path} is damaged or truncated ({refusal_reason(error)}). Download it again."
            ) from error
        raise UnsafeCheckpointError(
            f"{path} was refused: its pickle wants to run code or create objects other than "
            "tensors, which could harm this computer. Use a .safetensors version of this "
            f"model instead. ({refusal_reason(error)})"
        ) from error
    except FileNotFoundError as error:
        raise MissingComponentError(f"{path} is missing. Download it again.") from error
    except Exception as error:  # damaged pickles raise KeyError, IndexError, struct.error, ...
        raise CorruptCheckpointError(
            f"{path} is damaged or truncated ({type(error).__name__}: {_first_line(error)}). "
            "Download it again."
        ) from error
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise NotACheckpointError(f"{path} does not hold a dictionary of named tensors.")
    if torch.device(device).type == "cpu":
        return state
    return {key: tensor.to(device) for key, tensor in state.items()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
