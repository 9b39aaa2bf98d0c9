"""Classification from headers alone: every kind and family in its real key layout, diffusers
folders, and the files that are damaged, empty or not models at all."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from engine.library import Classification, classify_file, classify_path
from engine.library.classify import classify_shapes, diffusers_weight_files
from engine.loading.checkpoint import load_single_file
from engine.loading.detect import detect_family
from tests.engine.library.fake_models import (
    controlnet_shapes,
    diffusers_controlnet_shapes,
    lora_shapes,
    peft_lora_shapes,
    sd1_shapes,
    sd2_shapes,
    sdxl_lora_shapes,
    sdxl_refiner_shapes,
    sdxl_shapes,
    vae_shapes,
    write_diffusers_folder,
    write_header_only,
    write_small,
    write_tiny_sd1,
    write_torch_file,
)
from tests.factories import CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, reference_shapes

SDXL_NOT_YET = "SDXL: not supported yet"
SD2_NOT_YET = "SD 2.x: not supported yet"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    return {
        "safetensors": write_tiny_sd1(folder / "tiny.safetensors"),
        "ckpt": write_tiny_sd1(folder / "tiny.ckpt"),
        "inpaint.safetensors": write_tiny_sd1(folder / "inpaint.safetensors", inpainting=True),
        "inpaint.ckpt": write_tiny_sd1(folder / "inpaint.ckpt", inpainting=True),
    }


# --- full models ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["safetensors", "ckpt"])
def test_tiny_sd1_files_are_usable_checkpoints_and_really_load(tiny, name) -> None:
    found = classify_file(tiny[name])
    assert found == Classification("checkpoint", "sd1", False, "")
    sd = load_single_file(tiny[name])  # what "usable" promises: the loader takes it
    assert detect_family({k: tuple(v.shape) for k, v in sd.items()}).name == "sd1"


@pytest.mark.parametrize("name", ["inpaint.safetensors", "inpaint.ckpt"])
def test_inpainting_is_read_from_the_unet_input_channels(tiny, name) -> None:
    """For a .ckpt the channels come from the pickle's tensor sizes, read without unpickling."""
    assert classify_file(tiny[name]) == Classification("checkpoint", "sd1", True, "")


CASES = {
    "sd15": (sd1_shapes, Classification("checkpoint", "sd1", False, "")),
    "sd15-inpainting": (
        lambda: sd1_shapes(inpainting=True),
        Classification("checkpoint", "sd1", True, ""),
    ),
    "sd2": (sd2_shapes, Classification("checkpoint", "sd2", False, SD2_NOT_YET)),
    "sd2-inpainting": (
        lambda: sd2_shapes(inpainting=True),
        Classification("checkpoint", "sd2", True, SD2_NOT_YET),
    ),
    "sdxl": (sdxl_shapes, Classification("checkpoint", "sdxl", False, SDXL_NOT_YET)),
    "sdxl-refiner": (
        sdxl_refiner_shapes,
        Classification("checkpoint", "sdxl", False, SDXL_NOT_YET),
    ),
    "lora": (lora_shapes, Classification("lora", "sd1")),
    "lora-no-alpha": (lambda: lora_shapes(alpha=False), Classification("lora", "sd1")),
    "lora-unet-only": (
        lambda: {k: s for k, s in lora_shapes().items() if k.startswith("lora_unet_")},
        Classification("lora", "sd1"),
    ),
    "lora-text-only": (
        lambda: {k: s for k, s in lora_shapes().items() if k.startswith("lora_te_")},
        Classification("lora", "sd1"),
    ),
    "lora-peft": (peft_lora_shapes, Classification("lora", "sd1")),
    "lora-sdxl": (sdxl_lora_shapes, Classification("lora", "sdxl")),
    "controlnet": (controlnet_shapes, Classification("controlnet", "sd1")),
    "controlnet-diffusers": (diffusers_controlnet_shapes, Classification("controlnet", "sd1")),
    "vae": (vae_shapes, Classification("vae", None)),
    "vae-prefixed": (lambda: vae_shapes(VAE_PREFIX), Classification("vae", None)),
    "embedding": (lambda: {"emb_params": (4, 768)}, Classification("embedding", "sd1")),
    "embedding-sd2": (lambda: {"emb_params": (4, 1024)}, Classification("embedding", "sd2")),
    "embedding-sdxl": (
        lambda: {"clip_l": (4, 768), "clip_g": (4, 1280)},
        Classification("embedding", "sdxl"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kind_and_family_from_a_real_key_layout(case, tmp_path) -> None:
    make, expected = CASES[case]
    path = write_header_only(make(), tmp_path / f"{case}.safetensors")
    assert classify_file(path) == expected


def test_small_files_written_whole_classify_like_their_headers(tmp_path) -> None:
    """Real tensors, not header-only: the same answer."""
    lora = write_small(lora_shapes(), tmp_path / "lora.safetensors")
    emb = write_small({"emb_params": (2, 768)}, tmp_path / "emb.safetensors")
    assert classify_file(lora) == Classification("lora", "sd1")
    assert classify_file(emb) == Classification("embedding", "sd1")


def test_files_are_judged_by_content_not_by_name(tmp_path, tiny) -> None:
    """A LoRA named like a checkpoint, a checkpoint named .bin, a .ckpt that is safetensors."""
    lora = write_header_only(lora_shapes(), tmp_path / "v1-5-pruned-emaonly.safetensors")
    assert classify_file(lora).kind == "lora"
    renamed = tmp_path / "model.bin"
    shutil.copy(tiny["ckpt"], renamed)
    assert classify_file(renamed) == Classification("checkpoint", "sd1", False, "")
    st_as_ckpt = tmp_path / "model.ckpt"
    shutil.copy(tiny["safetensors"], st_as_ckpt)
    assert classify_file(st_as_ckpt) == Classification("checkpoint", "sd1", False, "")


def test_pix2pix_is_sd1_but_not_usable(tmp_path) -> None:
    path = write_header_only(sd1_shapes(unet="UNET-v1-Pix2Pix"), tmp_path / "ip2p.safetensors")
    found = classify_file(path)
    assert (found.kind, found.family) == ("checkpoint", "sd1")
    assert "InstructPix2Pix" in found.problem


def test_lone_components_and_incomplete_checkpoints(tmp_path) -> None:
    text = reference_shapes("CLIP-v1-SD", CLIP_PREFIX)
    unet = reference_shapes("UNET-v1-SD", UNET_PREFIX)
    cases = {
        "text": (text, "unknown", "only a text encoder"),
        "unet-diffusers": ({"conv_in.weight": (320, 4, 3, 3)}, "unknown", "only a UNet"),
        "no-vae": (unet | text, "checkpoint", "incomplete: no VAE"),
        "no-text": (unet | vae_shapes(VAE_PREFIX), "checkpoint", "incomplete: no text encoder"),
        "other": ({"model.layers.0.weight": (8, 8)}, "unknown", "not a Stable Diffusion"),
    }
    for name, (shapes, kind, problem) in cases.items():
        found = classify_file(write_header_only(shapes, tmp_path / f"{name}.safetensors"))
        assert found.kind == kind and found.problem.startswith(problem), (name, found)


def test_pickled_embeddings_old_and_diffusers_style(tmp_path) -> None:
    a1111 = {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(2, 768)}}
    a1111 |= {"name": "bad-hands", "step": 1500}
    assert classify_file(write_torch_file(a1111, tmp_path / "bad-hands.pt")) == Classification(
        "embedding", "sd1"
    )
    learned = write_torch_file({"<cat-toy>": torch.zeros(768)}, tmp_path / "learned_embeds.bin")
    assert classify_file(learned) == Classification("embedding", "sd1")


def test_legacy_torch_pickles_are_read_without_unpickling(tmp_path) -> None:
    """torch.save's pre-1.6 format: a sequence of pickles, then raw storages."""
    sd = {k: torch.zeros(s) for k, s in {"emb_params": (3, 1024)}.items()}
    path = write_torch_file(sd, tmp_path / "old.pt", legacy=True)
    assert classify_file(path) == Classification("embedding", "sd2")


# --- diffusers folders -----------------------------------------------------------------------


def test_diffusers_folders(tmp_path) -> None:
    def folder(name: str, **kwargs) -> Path:
        return write_diffusers_folder(tmp_path / name, **kwargs)

    assert classify_path(folder("sd15")) == Classification("checkpoint", "sd1", False, "")
    inpaint = folder("inpaint", pipeline="StableDiffusionInpaintPipeline", in_channels=9)
    assert classify_path(inpaint) == Classification("checkpoint", "sd1", True, "")
    assert classify_path(folder("sd21", context=1024)) == Classification(
        "checkpoint", "sd2", False, SD2_NOT_YET
    )
    xl = folder("xl", pipeline="StableDiffusionXLPipeline", context=2048, xl=True)
    assert classify_path(xl) == Classification("checkpoint", "sdxl", False, SDXL_NOT_YET)
    partial = classify_path(folder("partial", weights=False))
    assert partial.family == "sd1" and partial.problem.startswith("incomplete")
    (tmp_path / "plain").mkdir()
    assert classify_path(tmp_path / "plain") == Classification(
        "unknown", problem="a folder, not a diffusers model"
    )
    (tmp_path / "broken" / "unet").mkdir(parents=True)
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    assert "damaged model_index.json" in classify_path(tmp_path / "broken").problem


def test_diffusers_weights_prefer_plain_files_over_fp16_and_count_every_shard(tmp_path) -> None:
    folder = write_diffusers_folder(tmp_path / "m", weights=False)
    for name in ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin"):
        (folder / "unet" / name).write_bytes(b"x")
    for i in (1, 2):
        (folder / "vae" / f"diffusion_pytorch_model.fp16-0000{i}-of-00002.safetensors").touch()
    names = sorted(str(p.relative_to(folder)) for p in diffusers_weight_files(folder))
    assert names == [
        "unet/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "vae/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
    ]


# --- files that cannot be used ----------------------------------------------------------------


def test_problem_files_get_a_problem_never_an_exception(tmp_path, tiny) -> None:
    cases: dict[str, bytes] = {
        "empty.safetensors": b"",
        "text.safetensors": b"These are not the weights you are looking for.\n",
        "absurd.safetensors": struct.pack("<Q", 2**60) + b"{}",
        "garbage-json.safetensors": struct.pack("<Q", 8) + b"{garbage",
        "beyond-end.safetensors": _header({"a": {"shape": [1], "data_offsets": [0, 2**40]}}),
        "bad-entry.safetensors": _header({"a": {"shape": [-1], "data_offsets": [0, 0]}}),
        "zip.ckpt": _zip_without_pickle(tmp_path),
        "pickle-no-tensors.ckpt": b"\x80\x02}q\x00.",
        "pickle-cut.ckpt": b"\x80\x02}q\x00(X\x05\x00\x00\x00abc",
    }
    expected = {
        "empty.safetensors": "0-byte file",
        "text.safetensors": "not a model file",
        "absurd.safetensors": "damaged header",
        "garbage-json.safetensors": "damaged header",
        "beyond-end.safetensors": "incomplete: the file ends before its last tensor",
        "bad-entry.safetensors": "damaged header",
        "zip.ckpt": "a zip archive without data.pkl",
        "pickle-no-tensors.ckpt": "a pickle without tensors",
        "pickle-cut.ckpt": "damaged or unusual pickle",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        found = classify_file(path)
        assert found.kind == "unknown" and found.problem.startswith(expected[name]), (name, found)
    assert classify_file(tmp_path / "missing").problem.startswith("cannot be read")


def test_truncated_downloads_say_incomplete_at_any_cut(tmp_path, tiny) -> None:
    """Cut anywhere: a safetensors file keeps its kind when its header survived; a .ckpt (a
    zip with its directory at the end) is damaged. Never an exception."""
    for fmt in ("safetensors", "ckpt"):
        data = tiny[fmt].read_bytes()
        for cut in sorted({1, 8, 9, 100, len(data) // 3, len(data) // 2, len(data) - 1}):
            path = tmp_path / f"cut-{cut}.{fmt}"
            path.write_bytes(data[:cut])
            found = classify_file(path)
            assert found.problem, (fmt, cut, found)
            if fmt == "safetensors" and cut > 100_000:
                assert found.kind == "checkpoint" and "incomplete" in found.problem


def test_classify_shapes_agrees_with_the_loaders_detection_on_every_reference_layout() -> None:
    """usable (sd1 checkpoint, no problem) exactly when detect_family accepts the shapes."""
    layouts = [sd1_shapes(), sd1_shapes(True), sd2_shapes(), sdxl_shapes(), lora_shapes()]
    layouts += [controlnet_shapes(), vae_shapes(), sd1_shapes(unet="UNET-v1-Pix2Pix")]
    for shapes in layouts:
        found = classify_shapes(shapes)
        try:
            detect_family(shapes)
            accepted = True
        except Exception:  # noqa: BLE001 - any refusal
            accepted = False
        usable = found.kind == "checkpoint" and found.family == "sd1" and not found.problem
        assert usable == accepted, found


def _header(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


def _zip_without_pickle(tmp_path: Path) -> bytes:
    import zipfile

    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    return path.read_bytes()
