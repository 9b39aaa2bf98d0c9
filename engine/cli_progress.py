"""Progress on a terminal: one status line on stderr, rewritten in place with ``\\r``.

Shared by the downloads (``models download``) and the generations (``txt2img``, ``img2img``),
so that both look alike and the terminal handling lives in one place. Nothing here imports
torch: it only formats numbers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from engine.units import human_duration

if TYPE_CHECKING:
    from engine.api import StepEvent

# "Erase to the end of the line": written after the new text (not before, which would flicker),
# it removes what a longer previous text left behind.
ERASE_REST = "\x1b[K"


class StatusLine:
    """One line on a terminal, redrawn in place; nothing at all when ``stream`` is not one
    (a log or a pipe must not fill up with carriage returns).

    ``min_interval`` throttles redraws: a fast sampler reports hundreds of steps a second, and
    a terminal redrawn that often costs time and shows nothing a person can read."""

    def __init__(
        self,
        stream: TextIO,
        *,
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        shown: bool = True,
    ):
        self.stream = stream
        self.tty = shown and stream.isatty()  # whether anything is drawn at all
        self.min_interval = min_interval
        self.clock = clock
        self.drawn_at: float | None = None
        self.open = False  # text on the line that the next other output must first end

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.tty:
            return
        now = self.clock()
        if not force and self.drawn_at is not None and now - self.drawn_at < self.min_interval:
            return
        self.drawn_at = now
        # A line wider than the terminal wraps, and \r then returns only to its last row:
        # every redraw would leave a row behind.
        self.stream.write("\r" + text[: self._width() - 1] + ERASE_REST)
        self.stream.flush()
        self.open = True

    def _width(self) -> int:
        # This stream's terminal: shutil.get_terminal_size() asks stdout's, which may be a file.
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):  # no file descriptor, or not a terminal
            return 80

    def clear(self) -> None:
        """Erase the line: the cursor is back at its start, ready for other output."""
        if self.open:
            self.stream.write("\r" + ERASE_REST)
            self.stream.flush()
            self.open = False

    def end(self) -> None:
        """Keep the line as it is and go to the next one."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


class StepProgress:
    """The engine's ``on_step`` callback for the CLI: "Batch 1/2, step 12/20 (30%), 3.1 it/s,
    4 s left" on a terminal, at most ten times a second.

    With several prompts (``--from-file``) every job restarts its own step count and clock, so
    the counts and the time left here add up the jobs already finished."""

    REDRAW_INTERVAL = 0.1  # seconds

    def __init__(
        self,
        stream: TextIO,
        prompt_count: int = 1,
        *,
        shown: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.line = StatusLine(stream, min_interval=self.REDRAW_INTERVAL, clock=clock, shown=shown)
        self.prompt_count = prompt_count
        self.prompt_index = 0
        self.finished_seconds = 0.0  # of the prompts before this one
        self.last: StepEvent | None = None

    def __call__(self, event: StepEvent) -> None:
        self.last = event
        self.line.show(
            step_text(
                event.step,
                event.total,
                self.finished_seconds + event.elapsed,
                batch_index=event.batch_index,
                batch_count=event.batch_count,
                prompt_index=self.prompt_index,
                prompt_count=self.prompt_count,
            )
        )

    def note(self, text: str) -> None:
        """What happens before the first step (loading): shown at once, replaced by the steps."""
        self.line.show(text, force=True)

    def clear(self) -> None:
        self.line.clear()

    def next_prompt(self) -> None:
        if self.last is not None:
            self.finished_seconds += self.last.elapsed
        self.last = None
        self.prompt_index += 1


def step_text(
    step: int,
    total: int,
    elapsed: float,
    *,
    batch_index: int = 0,
    batch_count: int = 1,
    prompt_index: int = 0,
    prompt_count: int = 1,
) -> str:
    """ "Prompt 2/3, batch 1/2, step 12/20 (70%), 3.1 it/s, 4 s left": the counts that are more
    than one, then the whole run's share done, speed and time left."""
    per_prompt = batch_count * total
    done = prompt_index * per_prompt + batch_index * total + step
    whole = max(1, prompt_count * per_prompt)
    counts = [("prompt", prompt_index, prompt_count), ("batch", batch_index, batch_count)]
    parts = [f"{name} {index + 1}/{count}" for name, index, count in counts if count > 1]
    parts.append(f"step {step}/{total} ({100 * done // whole}%)")
    if elapsed > 0 and done > 0:
        rate = done / elapsed
        # Below one step a second (a CPU at 512x512) "0.3 it/s" reads worse than "3.3 s/it".
        parts.append(f"{rate:.1f} it/s" if rate >= 1 else f"{1 / rate:.1f} s/it")
        if done < whole:
            parts.append(f"{human_duration((whole - done) / rate)} left")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]
