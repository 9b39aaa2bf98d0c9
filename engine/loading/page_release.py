"""Give back the pages of a memory-mapped checkpoint once its tensors have been converted.

A safetensors file is mapped whole; every tensor is a view into that one mapping, so the mapped
pages a load has read stay resident (and count in the process's memory) until the last view is
gone, which is after the whole load. When the weights are converted (float16 file, float32 run),
that means holding the file and the converted model at once: about 1.5x the model. Telling the
kernel, tensor by tensor, that the source pages are no longer needed (``MADV_DONTNEED``) keeps the
peak near the model's own size. It is safe only for clean, file-backed private mappings, whose
pages fault in again from the file if read later; anonymous memory would be zeroed, so every
range is checked against ``/proc/self/maps`` first. Linux only; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Iterable
from pathlib import Path

import torch

MADV_DONTNEED = 4  # Linux value


class PageReleaser:
    """Releases the file-backed pages under tensors a load no longer needs."""

    def __init__(self) -> None:
        self._ranges = _file_mappings() if sys.platform.startswith("linux") else []
        self._madvise = _libc_madvise() if self._ranges else None

    def release(self, tensors: Iterable[torch.Tensor]) -> None:
        if self._madvise is None:
            return
        for tensor in tensors:
            self._release_one(tensor)

    def _release_one(self, tensor: torch.Tensor) -> None:
        if tensor.device.type != "cpu" or tensor.numel() == 0:
            return
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        page = mmap.PAGESIZE
        # Only whole pages inside the tensor: a neighbour's partial page is left alone.
        first, last = -(-start // page) * page, end // page * page
        if last > first and self._is_file_backed(first, last):
            assert self._madvise is not None
            self._madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), MADV_DONTNEED)

    def _is_file_backed(self, start: int, end: int) -> bool:
        return any(lo <= start and end <= hi for lo, hi in self._ranges)


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of private mappings of regular files (the checkpoints we mapped)."""
    ranges = []
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not fields[1].endswith("p") or not fields[5].startswith("/"):
            continue
        if not fields[5].endswith((".safetensors", ".ckpt", ".pt", ".pth", ".bin")):
            continue
        lo, hi = (int(part, 16) for part in fields[0].split("-"))
        ranges.append((lo, hi))
    return ranges


def _libc_madvise():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise
