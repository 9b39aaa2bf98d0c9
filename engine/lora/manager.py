"""The LoRAs of one loaded model: what a prompt's tags ask for, found, checked and applied.

The Engine keeps one ``LoraManager`` per loaded model and calls ``prepare(prompt)`` before each
job. Everything that can fail (an unknown name, an SDXL LoRA, a file that fits no layer) fails
before a weight is touched. Then the weights are made to hold exactly what this prompt asks
for: a job with the same LoRAs and weights as the last one changes nothing, a job without tags
puts the original weights back (``patcher.py`` says how that stays exact).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.library import LibraryEntry, ModelLibrary
from engine.library.classify import FAMILY_NAMES
from engine.loading.build import ModelBundle
from engine.lora.errors import (
    LoraError,
    LoraMismatchError,
    LoraNotFoundError,
    UnsupportedLoraError,
)
from engine.lora.formats import LoraFile, read_lora
from engine.lora.hashes import lora_hash
from engine.lora.patcher import Update, WeightPatcher, fits
from engine.lora.tags import LoraTag, lora_tags
from engine.lora.targets import Target, TargetIndex

FileKey = tuple[str, int, int]  # real path, size, mtime: a new version of a file is a new key


@dataclass(frozen=True)
class LoraOutcome:
    """What the job reports about its LoRAs."""

    notes: tuple[str, ...] = ()  # "name: 40 of 64 layers matched"
    hashes: str = ""  # A1111's "Lora hashes" value: "name: 0123456789ab, ..."; "" for none


@dataclass(frozen=True)
class _Use:
    tag: LoraTag
    key: FileKey
    lora: LoraFile


class LoraManager:
    def __init__(
        self,
        bundle: ModelBundle,
        library: Callable[[], ModelLibrary],
        hash_cache: Path | None = None,
    ) -> None:
        """``library``: gives the model library, only when a prompt names a LoRA."""
        self._bundle = bundle
        self._targets: TargetIndex | None = None  # built when a prompt first names a LoRA
        self.patcher = WeightPatcher(offload=bundle.device.type != "cpu")
        self._family = bundle.family
        self._library = library
        self._hash_cache = hash_cache
        self._files: dict[FileKey, LoraFile] = {}  # the files applied now, read once
        self._hashes: dict[FileKey, str] = {}

    def prepare(self, prompt: str) -> LoraOutcome:
        """Apply the LoRAs the prompt's tags ask for and remove the others."""
        tags = lora_tags(prompt)
        if not tags and not self.patcher.patched:
            return LoraOutcome()
        uses: list[_Use] = []
        for tag in tags:  # one after another: a file named twice is read once
            uses.append(self._use(tag, {use.key: use.lora for use in uses}))
        wanted, notes = self._plan(uses)
        self.patcher.set(wanted)
        self._files = {use.key: use.lora for use in uses}
        return LoraOutcome(tuple(notes), self._hash_text(uses))

    def clear(self) -> None:
        self.patcher.clear()
        self._files = {}

    # -- finding and reading ------------------------------------------------------------------
    def _use(self, tag: LoraTag, read_now: dict[FileKey, LoraFile]) -> _Use:
        entry = self._find(tag.name)
        path = Path(entry.path)
        try:
            stat = os.stat(path)
        except OSError as e:
            raise LoraError(f"The LoRA {path} cannot be read ({e.strerror or e}).") from None
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        self._check_family(entry, entry.family)  # before reading a file that cannot be used
        lora = read_now.get(key) or self._files.get(key) or read_lora(path)
        self._check_family(entry, "sdxl" if lora.sdxl else entry.family)
        return _Use(tag, key, lora)

    def _find(self, name: str) -> LibraryEntry:
        library = self._library()
        scan = library.last_scan or library.scan()
        named = _named(scan.entries, name)
        if not named:  # a file added since the last scan
            named = _named(library.scan().entries, name)
        loras = [e for e in named if e.kind == "lora"]
        if len(loras) > 1:
            listing = "\n".join(f"  {e.path}" for e in loras)
            raise LoraError(
                f'Several LoRA files are called "{name}":\n{listing}\n'
                "Rename or remove all but one of them."
            )
        if loras:
            if loras[0].problem:
                raise LoraError(f"The LoRA {loras[0].path} cannot be used: {loras[0].problem}.")
            return loras[0]
        if named:
            raise LoraNotFoundError(
                f'"{name}" is {named[0].path}, which is a {named[0].kind}, not a LoRA. '
                "Check the name in the <lora:...> tag."
            )
        places = "\n".join(f"  {p.path}" for p in library.places()) or "  (no model folders)"
        raise LoraNotFoundError(
            f'No LoRA called "{name}" was found. Looked in:\n{places}\n'
            "Put the file in one of these folders (or add its folder to the model library), "
            "or check the name in the <lora:...> tag."
        )

    def _check_family(self, entry: LibraryEntry, family: str | None) -> None:
        if family is None or family == self._family.name:
            return
        raise UnsupportedLoraError(
            f"{Path(entry.path).name} is a LoRA for {FAMILY_NAMES.get(family, family)}; the "
            f"loaded model is {self._family.display_name}. Use a LoRA made for "
            f"{FAMILY_NAMES.get(self._family.name, self._family.display_name)}, or remove its tag."
        )

    # -- matching -----------------------------------------------------------------------------
    @property
    def _index(self) -> TargetIndex:
        if self._targets is None:
            bundle = self._bundle
            self._targets = TargetIndex(bundle.unet, bundle.unet_config, bundle.text_encoder.model)
        return self._targets

    def _plan(self, uses: Sequence[_Use]) -> tuple[dict[str, tuple[Target, list[Update]]], list]:
        wanted: dict[str, tuple[Target, list[Update]]] = {}
        notes: list[str] = []
        for use in uses:
            total, matched = len(use.lora.layers), 0
            for i, layer in enumerate(use.lora.layers):
                target = self._index.find(layer)
                if target is None or not fits(layer, target.weight):
                    continue
                matched += 1
                multiplier = use.tag.te if layer.component == "te" else use.tag.unet
                if multiplier:
                    update = Update((use.key, i), multiplier, layer)
                    wanted.setdefault(target.key, (target, []))[1].append(update)
            if matched == 0:
                raise LoraMismatchError(self._no_match(use, total))
            if matched < total:
                notes.append(f"{use.tag.name}: {matched} of {total} layers matched")
        return wanted, notes

    def _no_match(self, use: _Use, total: int) -> str:
        name = Path(use.lora.path).name
        if total == 0:
            return f"{name} holds no LoRA layers this version can read: it cannot be applied."
        return (
            f"None of the {total} layers of {name} fits the loaded model "
            f"({self._family.display_name}). It is probably a LoRA for another kind of model; "
            "remove its tag."
        )

    # -- metadata -----------------------------------------------------------------------------
    def _hash_text(self, uses: Sequence[_Use]) -> str:
        parts: dict[str, str] = {}
        for use in uses:
            if use.key not in self._hashes:
                self._hashes[use.key] = lora_hash(
                    use.lora.path, dict(use.lora.metadata), self._hash_cache
                )
            name = use.tag.name.replace(":", "").replace(",", "")
            if self._hashes[use.key] and name not in parts:
                parts[name] = self._hashes[use.key]
        return ", ".join(f"{name}: {value}" for name, value in parts.items())


def _named(entries: Sequence[LibraryEntry], name: str) -> list[LibraryEntry]:
    wanted = name.strip().casefold()
    return [e for e in entries if wanted in (e.name.casefold(), Path(e.path).name.casefold())]
