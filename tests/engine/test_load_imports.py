"""Loading a checkpoint must not import torch._dynamo: the random init of an nn.Embedding built
on the meta device runs torch's Python ``normal_``, whose first call imports it (1.9 s of every
load on a 2-core CPU), for weights the checkpoint then replaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.factories import tiny_sd1_state_dict, write_checkpoint

SCRIPT = """
import sys
from pathlib import Path
import torch
from engine.loading.build import load_bundle
load_bundle(Path(sys.argv[1]), torch.device("cpu"), torch.float32)
print("dynamo" if "torch._dynamo" in sys.modules else "clean")
"""


def test_loading_a_checkpoint_does_not_import_dynamo(tmp_path: Path) -> None:
    path = write_checkpoint(tiny_sd1_state_dict(seed=1), tmp_path / "tiny.safetensors")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "clean"
