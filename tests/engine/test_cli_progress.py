"""The CLI's progress line: on a terminal only, at most ten redraws a second, gone at the end."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from engine.api import StepEvent
from engine.cli_progress import StatusLine, StepProgress, step_text
from tests.factories import tiny_sd1_state_dict, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kw, text",
    [
        ((12, 20, 4.0), dict(batch_count=2), "Batch 1/2, step 12/20 (30%), 3.0 it/s, 9 s left"),
        (
            (5, 10, 10.0),
            dict(prompt_index=1, prompt_count=2),
            "Prompt 2/2, step 5/10 (75%), 1.5 it/s, 3 s left",
        ),
        # A CPU at 512x512: seconds per step read better than 0.2 it/s.
        ((2, 25, 10.0), {}, "Step 2/25 (8%), 5.0 s/it, 1 min 55 s left"),
        ((20, 20, 2.0), {}, "Step 20/20 (100%), 10.0 it/s"),
        ((0, 20, 0.0), {}, "Step 0/20 (0%)"),
    ],
)
def test_step_text(args, kw, text):
    assert step_text(*args, **kw) == text


def test_several_prompts_add_up_steps_and_time():
    stream, clock = Terminal(), Clock()
    progress = StepProgress(stream, prompt_count=2, clock=clock)
    progress(StepEvent(0, 10, 10, 5.0, 0, 1))  # the first prompt's last step, after 5 s
    progress.next_prompt()
    clock.now = 1.0
    progress(StepEvent(0, 5, 10, 2.5, 0, 1))  # the second prompt's job restarts its clock
    assert stream.getvalue().endswith("\rPrompt 2/2, step 5/10 (75%), 2.0 it/s, 2 s left\x1b[K")


# --- the line ----------------------------------------------------------------------------------


def test_redraws_are_throttled_to_ten_a_second():
    stream, clock = Terminal(), Clock()
    progress = StepProgress(stream, clock=clock)
    for step in range(1, 201):  # 200 steps in 2 s: a tiny model's speed
        clock.now = step / 100
        progress(StepEvent(0, step, 200, clock.now, 0, 1))
    assert 15 <= stream.getvalue().count("\r") <= 21


def test_clear_erases_the_line_and_only_once():
    stream = Terminal()
    line = StatusLine(stream)
    line.clear()  # nothing drawn yet: nothing to erase
    line.show("Step 1/2")
    line.clear()
    line.clear()
    assert stream.getvalue() == "\rStep 1/2\x1b[K\r\x1b[K"


def test_a_long_line_is_cut_to_the_terminal_width():
    stream = Terminal()  # no file descriptor: 80 columns assumed
    StatusLine(stream).show("x" * 200)
    assert stream.getvalue() == "\r" + "x" * 79 + "\x1b[K"


@pytest.mark.parametrize("stream, shown", [(io.StringIO(), True), (Terminal(), False)])
def test_nothing_is_drawn_in_a_log_or_when_not_shown(stream, shown):
    progress = StepProgress(stream, shown=shown)
    progress.note("Loading PyTorch...")
    progress(StepEvent(0, 1, 2, 1.0, 0, 1))
    progress.clear()
    assert stream.getvalue() == ""


# --- a real terminal ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(
        tiny_sd1_state_dict(seed=2), tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    )


def _args(ckpt: Path, outdir: Path, *extra: str) -> list[str]:
    quick = "--prompt x --H 64 --W 64 --steps 20 --n_iter 2 --seed 3 --precision full"
    return ["txt2img", "--ckpt", str(ckpt), "--outdir", str(outdir), *quick.split(), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _in_terminal(
    args: list[str], columns: int = 100, ctrl_c_after: str | None = None
) -> tuple[int, str]:
    """Runs the CLI with stdout and stderr on a pseudo-terminal, as a person at a shell does;
    the exit code and everything the terminal received. ``ctrl_c_after``: send SIGINT once
    the terminal has received that text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=_env(),
        cwd=ROOT,
    )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal's other side is closed
                break
            if not chunk:
                break
            received += chunk
            if ctrl_c_after is not None and ctrl_c_after.encode() in received:
                proc.send_signal(signal.SIGINT)
                ctrl_c_after = None
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, received.decode()


def test_a_terminal_sees_one_line_rewritten_then_cleared(ckpt, tmp_path):
    code, screen = _in_terminal(_args(ckpt, tmp_path / "out"))
    assert code == 0, screen
    redraws = [part for part in screen.split("\r") if part.startswith("Batch ")]
    assert any(part.startswith("Batch 1/2, step ") for part in redraws), screen
    assert any(part.startswith("Batch 2/2, step ") for part in redraws), screen
    assert all(part.endswith("\x1b[K") and "it/s" in part for part in redraws[1:]), screen
    # The terminal turns "\n" into "\r\n". Each image's path is written over an erased line
    # (what follows the last \r before it), and no progress is drawn after the last image.
    lines = screen.replace("\r\n", "\n").split("\n")
    images = [line.rsplit("\r", 1)[-1] for line in lines if ".png  (seed " in line]
    out = tmp_path / "out"
    assert [line.startswith(f"\x1b[K{out}") for line in images] == [True, True], screen
    assert images[0].endswith("(seed 3)") and images[1].endswith("(seed 4)")
    assert screen.endswith("(seed 4)\r\n"), screen[-200:]
    assert len(list(out.glob("*.png"))) == 2


def test_json_on_a_terminal_shows_no_progress(ckpt, tmp_path):
    code, screen = _in_terminal(_args(ckpt, tmp_path / "out", "--json"))
    assert code == 0, screen
    assert "\x1b[K" not in screen and "step" not in screen.lower()
    assert '"images"' in screen


def test_a_piped_stderr_gets_no_progress(ckpt, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *_args(ckpt, tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "\r" not in proc.stdout
    assert len(proc.stdout.splitlines()) == 2


def test_ctrl_c_on_a_terminal_says_so_on_lines_of_their_own(ckpt, tmp_path):
    code, screen = _in_terminal(
        _args(ckpt, tmp_path / "out", "--n_iter", "50"), ctrl_c_after="Batch 1/50, step"
    )
    assert code == 130, screen
    lines = screen.replace("\r\n", "\n").split("\n")
    stop = next(line for line in lines if "Stopping after the current step" in line)
    assert stop.rsplit("\r", 1)[-1].startswith("\x1b[KStopping"), screen  # over the progress
    # A progress line drawn after it (if a step came before the cancel was seen) is erased.
    assert lines[-2].rsplit("\r", 1)[-1].removeprefix("\x1b[K").startswith("Cancelled: ")
    assert lines[-1] == ""
