"""Prompt editing and alternation, A1111's syntax: a prompt + steps -> [(until_step, text)].

- ``[from:to:when]`` uses ``from`` up to step ``when``, then ``to``; ``[to:when]`` adds ``to``
  after step ``when``; ``[from::when]`` removes ``from`` after it. ``when`` below 1 is a fraction
  of the steps (``0.25`` of 20 steps is step 5), from 1 up a step number; it is capped at the
  step count.
- ``[a|b|c]`` takes ``a`` at step 1, ``b`` at step 2, ... and starts again; an empty option is
  empty text (``[fe|]male``).
- They nest (``a[b:[c:d:2]:1]e``), also inside emphasis brackets, which are kept as text here and
  weighed later (``engine.prompts.attention``).

Steps are counted from 1; entry ``(until, text)`` holds for the steps after the previous entry's
``until`` up to and including its own; the last ``until`` is the step count.

The grammar is A1111's (``modules/prompt_parser.py``, ``schedule_parser``, a lark grammar, and the
doctests of ``get_learned_conditioning_prompt_schedules``), parsed here by hand: emphasis brackets
``(...)``, ``(...:...)``, ``[...]`` and the two bracket forms above must close inside a bracket;
at the top level a bracket that does not close, and a stray ``:`` ``(`` ``)`` ``[`` ``]``, are
text. A prompt that does not fit the grammar at all (a ``|`` outside brackets, a backslash at the
very end) is not scheduled: it is used whole, at every step, as A1111 does.

Where A1111 differs, on purpose:
- A1111 1.6 and later read ``when`` with a decimal point as a fraction (``1.5`` is 150%, never
  reached) unless its "old prompt editing timelines" option is on; here, as that option and as
  the issue defines it, below 1 is a fraction and 1 and above a step (``1.5`` is step 1).
- A1111 looks the schedule up with a step counter that starts at 0 and counts every model call,
  so ``[a:b:3]`` uses ``a`` for 4 calls and alternation goes a, a, b, a, b ...; here step ``s``
  (1-based sampler steps) uses exactly the entry that covers ``s``: ``a`` for steps 1-3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*\]")
_SPECIAL = frozenset("[]():|\\")


class _NoParse(Exception):
    """The text does not fit the grammar where it was tried."""


@dataclass(frozen=True)
class _Edit:
    before: tuple[_Node, ...]
    after: tuple[_Node, ...]
    when: float


@dataclass(frozen=True)
class _Alternate:
    options: tuple[tuple[_Node, ...], ...]


_Node = str | _Edit | _Alternate


def prompt_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """``[(until_step, text), ...]`` for a run of ``steps`` steps, ``until`` increasing.

    >>> prompt_schedule("a [b:c:0.5] d", 10)
    [(5, 'a b d'), (10, 'a c d')]
    """
    steps = max(int(steps), 1)
    try:
        nodes = _Parser(prompt).parse_top()
    except _NoParse:
        return [(steps, prompt)]
    ends = {steps}
    _collect_ends(nodes, steps, ends)
    return [(end, _render(nodes, end, steps)) for end in sorted(ends)]


def schedule_texts(prompt: str, steps: int) -> list[str]:
    """The distinct texts the schedule uses, in order of first use."""
    return list(dict.fromkeys(text for _, text in prompt_schedule(prompt, steps)))


def text_at_step(schedule: list[tuple[int, str]], step: int) -> str:
    """The text for ``step`` (1-based); steps past the end use the last entry."""
    for until, text in schedule:
        if step <= until:
            return text
    return schedule[-1][1]


def switch_step(when: float, steps: int) -> int:
    """The last step of the ``from`` part: below 1 a fraction of ``steps``, else a step."""
    value = when * steps if when < 1 else when
    return min(steps, int(value))


def _collect_ends(nodes: tuple[_Node, ...], steps: int, ends: set[int]) -> None:
    for node in nodes:
        if isinstance(node, _Edit):
            end = switch_step(node.when, steps)
            if end >= 1:
                ends.add(end)
            _collect_ends(node.before, steps, ends)
            _collect_ends(node.after, steps, ends)
        elif isinstance(node, _Alternate):
            ends.update(range(1, steps + 1))
            for option in node.options:
                _collect_ends(option, steps, ends)


def _render(nodes: tuple[_Node, ...], step: int, steps: int) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Edit):
            part = node.before if step <= switch_step(node.when, steps) else node.after
            out.append(_render(part, step, steps))
        else:
            out.append(_render(node.options[(step - 1) % len(node.options)], step, steps))
    return "".join(out)


class _Parser:
    """Recursive descent over the text. Inside brackets every bracket must close, so the parse
    there is unique; only the top level may take a bracket as plain text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def parse_top(self) -> tuple[_Node, ...]:
        text, i = self.text, 0
        nodes: list[_Node] = []
        while i < len(text):
            if text[i] in "([":
                try:
                    node, i = self._bracket(i)
                    nodes.extend(node)
                    continue
                except _NoParse:
                    pass
            if text[i] in "[]():":  # a stray bracket or colon is text at the top level
                nodes.append(text[i])
                i += 1
            else:
                plain, i = self._plain(i)
                nodes.append(plain)
        return tuple(nodes)

    def _plain(self, i: int) -> tuple[str, int]:
        """Text without brackets, colons or bars; ``\\x`` escapes any character but a newline
        (kept as written: the emphasis parser reads the escapes)."""
        text, start = self.text, i
        while i < len(text):
            if text[i] == "\\":
                if i + 1 >= len(text) or text[i + 1] == "\n":
                    raise _NoParse
                i += 2
            elif text[i] in _SPECIAL:
                break
            else:
                i += 1
        if i == start:
            raise _NoParse  # a "|" outside brackets
        return text[start:i], i

    def _inner(self, i: int) -> tuple[tuple[_Node, ...], int]:
        """A prompt inside brackets: up to the next ``:`` ``|`` ``)`` ``]`` at this depth."""
        text = self.text
        nodes: list[_Node] = []
        while i < len(text) and text[i] not in ":|)]":
            if text[i] in "([":
                node, i = self._bracket(i)
                nodes.extend(node)
            else:
                plain, i = self._plain(i)
                nodes.append(plain)
        if i >= len(text):
            raise _NoParse  # the bracket never closes
        return tuple(nodes), i

    def _bracket(self, i: int) -> tuple[tuple[_Node, ...], int]:
        if self.text[i] == "(":
            return self._round(i)
        return self._square(i)

    def _round(self, i: int) -> tuple[tuple[_Node, ...], int]:
        """``(a)`` or ``(a:b)``: emphasis, kept as text with whatever is scheduled inside."""
        first, j = self._inner(i + 1)
        if self.text[j] == ")":
            return ("(", *first, ")"), j + 1
        if self.text[j] != ":":
            raise _NoParse
        second, k = self._inner(j + 1)
        if self.text[k] != ")":
            raise _NoParse
        return ("(", *first, ":", *second, ")"), k + 1

    def _square(self, i: int) -> tuple[tuple[_Node, ...], int]:
        first, j = self._inner(i + 1)
        mark = self.text[j]
        if mark == "]":
            return ("[", *first, "]"), j + 1
        if mark == "|":
            return self._alternate(first, j)
        if mark == ":":
            return self._edit(first, j)
        raise _NoParse

    def _alternate(self, first: tuple[_Node, ...], j: int) -> tuple[tuple[_Node, ...], int]:
        options = [first]
        while self.text[j] == "|":
            option, j = self._inner(j + 1)
            options.append(option)
        if self.text[j] != "]":
            raise _NoParse
        return (_Alternate(tuple(options)),), j + 1

    def _edit(self, first: tuple[_Node, ...], j: int) -> tuple[tuple[_Node, ...], int]:
        """After ``[first:``: either ``when]`` or ``to:when]``."""
        number = _NUMBER.match(self.text, j + 1)
        if number:
            return (_Edit((), first, float(number.group(1))),), number.end()
        second, k = self._inner(j + 1)
        number = _NUMBER.match(self.text, k + 1) if self.text[k] == ":" else None
        if number is None:
            raise _NoParse
        return (_Edit(first, second, float(number.group(1))),), number.end()
