"""Releasing a memory-mapped checkpoint's pages: RSS drops, data stays readable and intact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.loading.build import load_bundle
from engine.loading.page_release import PageReleaser
from tests.factories import tiny_sd1_state_dict, write_checkpoint

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@linux_only
def test_release_drops_resident_pages_and_keeps_the_data(tmp_path: Path):
    big = torch.arange(4 << 20, dtype=torch.float32)  # 16 MB
    save_file({"big": big, "small": torch.ones(3)}, str(tmp_path / "w.safetensors"))
    sd = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(sd["big"], big)  # touches every page
    before = rss_file_kb()
    PageReleaser().release([sd["big"]])
    assert before - rss_file_kb() > 12_000  # most of the 16 MB left the resident set
    assert torch.equal(sd["big"], big)  # faults back in from the file, unchanged


@linux_only
def test_anonymous_memory_is_never_released():
    anon = torch.arange(1 << 20, dtype=torch.float32)  # not file-backed: must stay as it is
    PageReleaser().release([anon])
    assert torch.equal(anon, torch.arange(1 << 20, dtype=torch.float32))


def test_converted_load_keeps_weights_and_uses_channels_last(tmp_path: Path):
    sd = tiny_sd1_state_dict(seed=3, dtype=torch.float16)
    path = write_checkpoint(sd, tmp_path / "tiny.safetensors")
    bundle = load_bundle(path, torch.device("cpu"), torch.float32)
    conv = bundle.unet.input_blocks[1][0].in_layers[2].weight
    assert conv.dtype == torch.float32
    assert conv.is_contiguous(memory_format=torch.channels_last)
    source = sd["model.diffusion_model.input_blocks.1.0.in_layers.2.weight"].float()
    assert torch.equal(conv, source)  # released source pages did not corrupt the copy
    assert torch.equal(
        bundle.vae.decoder.conv_in.weight, sd["first_stage_model.decoder.conv_in.weight"].float()
    )
