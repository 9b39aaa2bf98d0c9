"""Extra-network tags in a prompt: ``<lora:name:0.8>``, ``<lora:name:te=0.5:unet=1>``.

A1111's syntax: ``<kind:item:item...>``, ``kind`` a word, items split at ``:``; an item of the
form ``key=value`` is named, the others positional. The tags are taken out of the text the text
encoder sees; the prompt kept in the picture's metadata still carries them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True)
class ExtraNetworkTag:
    kind: str  # "lora", "hypernet", ... (lower-cased)
    positional: tuple[str, ...]  # the name first, then e.g. weights as written
    named: dict[str, str] = field(default_factory=dict, compare=False)
    span: tuple[int, int] = (0, 0)  # where the tag was in the original text

    @property
    def name(self) -> str:
        return self.positional[0] if self.positional else ""


def split_extra_networks(prompt: str) -> tuple[str, list[ExtraNetworkTag]]:
    """(the prompt without its tags, the tags in order). The tags are removed without touching
    the text around them, as A1111 does (``"a, <lora:x:1>, b"`` -> ``"a, , b"``)."""
    tags: list[ExtraNetworkTag] = []

    def take(match: re.Match[str]) -> str:
        positional: list[str] = []
        named: dict[str, str] = {}
        for item in match.group(2).split(":"):
            key, eq, value = item.partition("=")
            if eq and key.strip():
                named[key.strip()] = value.strip()
            else:
                positional.append(item.strip())
        tags.append(ExtraNetworkTag(match.group(1).lower(), tuple(positional), named, match.span()))
        return ""

    return TAG.sub(take, prompt), tags
