"""The A1111 ``parameters`` text: write it and read it back (the file side: image_metadata.py).

The format, as written by AUTOMATIC1111's web UI and read by most other tools::

    <prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>    (omitted when empty)
    Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, ...

Rules this module follows (and the round-trip guarantee they give):

- Lines are separated by ``"\\n"`` only. ``"\\r\\n"`` and lone ``"\\r"`` in prompts are
  normalised to ``"\\n"`` on both writing and reading; nothing else in a prompt is changed
  (no stripping), so leading spaces, blank lines, ``,`` ``:`` and quotes survive.
- The settings line is always the LAST line written. When reading, only the last line is
  considered, and only when it tokenises as ``Key: value, Key: value, ...`` with a ``Steps``
  key or at least three known keys (see :data:`KNOWN_KEYS`). So a prompt whose own last line
  looks like ``Steps: 3, ...`` is safe whenever settings are written after it.
- The negative prompt starts at the FIRST line that begins with ``Negative prompt:`` (as in
  A1111). A negative prompt may itself contain such lines; a prompt may not: a prompt line
  starting with ``Negative prompt:`` cannot be told apart from the marker, in any reader.
- Setting values holding ``,`` ``:`` a control character or line break, leading or trailing
  whitespace, or starting with ``"`` are written JSON-quoted; the reader unquotes them. Keys
  must look like A1111 keys (word characters, spaces, ``-`` ``/`` ``(`` ``)`` ``.`` ``+``).

So ``parse_parameters(format_parameters(p, n, s))`` gives back ``p``, ``n`` (line breaks
normalised) and ``{k: format_value(v)}`` for any ``p`` without a line starting with
``Negative prompt:``, any ``n``, and any ``s`` with valid keys that holds ``Steps`` (or three
known keys), as every text this app writes does. Without such settings the last line of the
text is prompt (or negative prompt) unless it happens to parse as settings.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
from dataclasses import dataclass, field

from engine.api import (
    MAX_CLIP_SKIP,
    MAX_GUIDANCE,
    MAX_HIRES_SCALE,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
)
from engine.hires import RESIZE_KEY, STEPS_KEY, UPSCALE_KEY, UPSCALER_KEY, upscaler_from_display
from engine.inpaint.settings import inpaint_fields
from engine.samplers import (
    find_sampler,
    find_schedule,
    sampler_ids,
    sampler_info,
    schedule_ids,
    schedule_info,
)

NEGATIVE_MARKER = "Negative prompt:"
# A1111 writes this key, always as "True", when its "SGM noise multiplier" option scaled the
# txt2img start noise by sqrt(1 + sigma_max**2) instead of sigma_max (k-diffusion samplers only).
SGM_NOISE_KEY = "SGM noise multiplier"
# Our texts from before SGM_NOISE_KEY was written said just this under "Version"; newer ones
# add the version number, so a missing key can be read right in both (see _sgm_noise_of).
LEGACY_VERSION = "latentdesk"

# Keys A1111 and its forks commonly write; three of them make a line a settings line.
KNOWN_KEYS = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "VAE hash",
        "VAE",
        "Denoising strength",
        "Clip skip",
        "ENSD",
        "Eta",
        "Version",
        "Lora hashes",
        "TI hashes",
        "Hires upscale",
        "Hires steps",
        "Hires upscaler",
        "Variation seed",
        "Variation seed strength",
        "Face restoration",
        "Mask blur",
        "RNG",
        "Emphasis",
        "Batch size",
        "Batch pos",
        "Distilled CFG Scale",
        "Module 1",
        SGM_NOISE_KEY,
    }
)

_KEY_RE = re.compile(r"\w[\w \-/().+]*")
# A key at the start of a segment: the key, optional spaces, then the colon.
_KEYED_SEGMENT_RE = re.compile(r"(\w[\w \-/().+]*?)\s*:")


@dataclass(frozen=True)
class Parameters:
    """What :func:`parse_parameters` recovers. Setting values are the unquoted strings."""

    prompt: str
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)


# --- writing ---------------------------------------------------------------------------------


def format_parameters(prompt: str, negative_prompt: str, settings: dict[str, object]) -> str:
    """The A1111 ``parameters`` text. ``settings`` keeps its order; ``None`` values are skipped.

    Raises ValueError for a key that is not A1111-shaped (a bug in the caller, not user input).
    """
    lines = []
    prompt = normalize_newlines(prompt)
    if prompt:
        lines.append(prompt)
    negative_prompt = normalize_newlines(negative_prompt)
    if negative_prompt:
        lines.append(f"{NEGATIVE_MARKER} {negative_prompt}")
    settings_line = format_settings(settings)
    if settings_line:
        lines.append(settings_line)
    return "\n".join(lines)


def format_settings(settings: dict[str, object]) -> str:
    """``Key: value, Key: value`` with values quoted where needed."""
    parts = []
    for key, value in settings.items():
        if value is None:
            continue
        if not _KEY_RE.fullmatch(key) or key != key.strip():
            raise ValueError(f"not a valid A1111 settings key: {key!r}")
        parts.append(f"{key}: {_quote(format_value(value))}")
    return ", ".join(parts)


def format_value(value: object) -> str:
    """A value as A1111 prints it: 7.0 -> "7", 7.5 -> "7.5", True -> "True"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if abs(value) < 1e16 and value == int(value):
            return str(int(value))
        return repr(value)
    return str(value)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _quote(text: str) -> str:
    if _needs_quotes(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _needs_quotes(text: str) -> bool:
    if text != text.strip() or text.startswith('"'):
        return True
    # Control characters and Unicode line breaks would split the line for some readers.
    return any(c in ",:" or c < " " or c in "\x7f\x85\u2028\u2029" for c in text)


# --- reading ---------------------------------------------------------------------------------


def parse_parameters(text: str) -> Parameters:
    """Prompt, negative prompt and settings from a ``parameters`` text. Never raises.

    Without a recognisable settings line the whole text is prompt (and negative prompt).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return Parameters(prompt="")
    text = normalize_newlines(text)
    body, settings = _split_settings(text)
    prompt, negative = _split_negative(body)
    return Parameters(prompt=prompt, negative_prompt=negative, settings=settings)


def _split_settings(text: str) -> tuple[str, dict[str, str]]:
    """(text before the settings line, settings), or (text, {}) when there is none."""
    stripped = text.rstrip()
    cut = stripped.rfind("\n")
    settings = parse_settings_line(stripped[cut + 1 :])
    if not _looks_like_settings(settings):
        return text, {}
    return (stripped[:cut] if cut >= 0 else ""), settings


def _looks_like_settings(settings: dict[str, str]) -> bool:
    return "Steps" in settings or len(KNOWN_KEYS.intersection(settings)) >= 3


def _split_negative(body: str) -> tuple[str, str]:
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if line.startswith(NEGATIVE_MARKER):
            first = line[len(NEGATIVE_MARKER) :]
            # We write exactly one space after the marker; anything more belongs to the text.
            first = first[1:] if first.startswith(" ") else first
            return "\n".join(lines[:index]), "\n".join([first, *lines[index + 1 :]])
    return body, ""


def parse_settings_line(line: str) -> dict[str, str]:
    """``Key: value, ...`` into a dict, in order. Segments that are not ``Key: value`` are
    skipped, a bare key is kept as ``{key: key}`` (how A1111 writes flags). Never raises."""
    settings: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        pos = _skip_spaces(line, pos)
        match = _KEYED_SEGMENT_RE.match(line, pos)
        if match:
            value, pos = _read_value(line, _skip_spaces(line, match.end()))
            settings[match.group(1).strip()] = value
        else:
            raw, pos = _read_raw(line, pos)
            if _KEY_RE.fullmatch(raw.strip()):
                settings.setdefault(raw.strip(), raw.strip())
    return settings


def _skip_spaces(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _read_value(line: str, pos: int) -> tuple[str, int]:
    """The value starting at ``pos`` and the position after its trailing comma."""
    if pos < len(line) and line[pos] in '"[{':
        found = _read_json(line, pos)
        if found is not None:
            return found
    return _read_raw(line, pos)


def _read_json(line: str, pos: int) -> tuple[str, int] | None:
    """A JSON string (unquoted) or an unquoted JSON list/object (kept as its text), when it
    is the whole value; None otherwise, and the value is read raw."""
    try:
        decoded, end = json.JSONDecoder().raw_decode(line, pos)
    except ValueError:
        return None
    after = _skip_spaces(line, end)
    if after < len(line) and line[after] != ",":
        return None
    value = decoded if line[pos] == '"' and isinstance(decoded, str) else line[pos:end]
    return value, after + 1


def _read_raw(line: str, pos: int) -> tuple[str, int]:
    comma = line.find(",", pos)
    end = len(line) if comma < 0 else comma
    return line[pos:end].rstrip(" \t"), end + 1


# --- names -----------------------------------------------------------------------------------


def sampler_display_name(name: str) -> str:
    """Our sampler id ("dpmpp_2m") as A1111 writes it ("DPM++ 2M"); unknown ids unchanged."""
    return sampler_info(name).display_name if name in sampler_ids() else name


def sampler_from_display(name: str) -> str | None:
    """An A1111 sampler name ("DPM++ 2M", "DPM++ 2M Karras", "k_euler_a") as our id, or None."""
    wanted = name.strip()
    if wanted.casefold().endswith(" karras"):
        wanted = wanted[: -len(" karras")]
    info = find_sampler(wanted)
    return info.id if info is not None else None


def schedule_display_name(name: str) -> str:
    """ "karras" -> "Karras", "sgm_uniform" -> "SGM Uniform" (A1111's labels); unknown ids
    unchanged."""
    return schedule_info(name).display_name if name in schedule_ids() else name


def schedule_from_display(name: str) -> str | None:
    """ "Karras" -> "karras", "SGM Uniform" or "SGMUniform" -> "sgm_uniform"; a schedule we do
    not have (e.g. "Automatic", "Exponential") -> None."""
    info = find_schedule(name)
    return info.id if info is not None else None


# --- back to a request -----------------------------------------------------------------------


def request_from_parameters(params: Parameters) -> dict[str, object]:
    """GenerationRequest field values recoverable from ``params``. Missing, unknown or
    out-of-range values are left out, so ``replace(request, **result)`` is always safe."""
    fields: dict[str, object] = {
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt,
    }
    settings = params.settings
    _put(fields, "steps", _int_in(settings.get("Steps"), 1, MAX_STEPS))
    _put(fields, "guidance_scale", _float_in(settings.get("CFG scale"), 0.0, MAX_GUIDANCE))
    _put(fields, "seed", _int_in(settings.get("Seed"), 0, MAX_SEED))
    # A hires picture's "Denoising strength" is its hires pass's (A1111's txt2img), not img2img's.
    strength = "hires_denoise" if _is_hires(settings) else "strength"
    _put(fields, strength, _float_in(settings.get("Denoising strength"), 0.0, 1.0))
    _put(fields, "clip_skip", _int_in(settings.get("Clip skip"), 1, MAX_CLIP_SKIP))
    sampler_name = settings.get("Sampler", "")
    _put(fields, "sampler", sampler_from_display(sampler_name))
    _put(fields, "schedule", _schedule_of(sampler_name, settings.get("Schedule type")))
    sampler = fields.get("sampler")
    if isinstance(sampler, str) and sampler_info(sampler).takes_eta:
        # A1111 writes "Eta DDIM"; we write "Eta". (Its "Eta" of other samplers is the
        # ancestral eta, which ours do not take.)
        eta = settings.get("Eta DDIM", settings.get("Eta"))
        _put(fields, "eta", _float_in(eta, 0.0, 1.0))
    fields.update(_size_of(settings.get("Size")))
    if settings:  # a bare prompt says nothing about the noise: keep the request's
        fields["sgm_noise"] = _sgm_noise_of(settings)
    if _is_hires(settings):
        fields.update(_hires_of(settings))
    fields.update(inpaint_fields(settings))  # "Mask blur", "Masked content", ...
    return fields


def version_label() -> str:
    """What our texts write under "Version": "latentdesk 0.1.0"."""
    return f"{LEGACY_VERSION} {_package_version()}"


@functools.cache
def _package_version() -> str:
    try:
        return importlib.metadata.version("latentdesk")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "dev"


def _sgm_noise_of(settings: dict[str, str]) -> bool:
    """Whether the picture started from noise * sqrt(1 + sigma_max**2).

    A1111 writes the key only when its option was on; without it, it scaled by sigma_max (and
    so do tools that copy its format). Our own texts from before the key was written always
    used the multiplier. DDIM, PLMS and img2img start the same either way, so for them the
    answer is harmless whichever it is.
    """
    value = settings.get(SGM_NOISE_KEY)
    if value is not None:
        return value.strip().casefold() == "true"
    return settings.get("Version", "").strip() == LEGACY_VERSION


def _is_hires(settings: dict[str, str]) -> bool:
    """Whether the picture had A1111's hires fix (as its own check when pasting parameters)."""
    return any(key in settings for key in (UPSCALE_KEY, UPSCALER_KEY, RESIZE_KEY))


def _hires_of(settings: dict[str, str]) -> dict[str, object]:
    """hires_scale, hires_steps and hires_upscaler of a hires picture (hires_denoise is read
    with "Denoising strength"). A1111 leaves out "Hires steps" when 0 (as many as Steps) and
    "Hires upscaler" when it used its default, "Latent". Its other upscalers are left out."""
    fields: dict[str, object] = {}
    _put(fields, "hires_scale", _hires_scale_of(settings))
    _put(fields, "hires_steps", _int_in(settings.get(STEPS_KEY, "0"), 0, MAX_STEPS))
    _put(fields, "hires_upscaler", upscaler_from_display(settings.get(UPSCALER_KEY, "Latent")))
    return fields


def _hires_scale_of(settings: dict[str, str]) -> float | None:
    """ "Hires upscale", or the factor of a "Hires resize" (A1111's target size, a side 0 when
    it keeps the aspect ratio) to "Size" when both sides scale alike."""
    if UPSCALE_KEY in settings:
        return _float_in(settings[UPSCALE_KEY], 1.0, MAX_HIRES_SCALE)
    target, size = _pair(settings.get(RESIZE_KEY)), _pair(settings.get("Size"))
    if target is None or size is None or not all(size):
        return None
    factors = [t / s for t, s in zip(target, size, strict=True) if t]
    if not factors or max(factors) - min(factors) > 0.01:
        return None
    return _float_in(str(round(factors[0], 2)), 1.0, MAX_HIRES_SCALE)


def _pair(text: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d{1,5})\s*x\s*(\d{1,5})\s*", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _put(fields: dict[str, object], name: str, value: object) -> None:
    if value is not None:
        fields[name] = value


def _schedule_of(sampler_name: str, schedule_name: str | None) -> str | None:
    if schedule_name is not None:
        return schedule_from_display(schedule_name)
    # Before "Schedule type" existed, A1111 put Karras into the sampler name.
    if sampler_name.strip().casefold().endswith(" karras"):
        return "karras"
    return None


def _size_of(text: str | None) -> dict[str, int]:
    match = re.fullmatch(r"\s*(\d{1,5})\s*x\s*(\d{1,5})\s*", text or "")
    if not match:
        return {}
    width, height = int(match.group(1)), int(match.group(2))
    ok = all(MIN_SIZE <= v <= MAX_SIZE and v % 8 == 0 for v in (width, height))
    return {"width": width, "height": height} if ok else {}


def _int_in(text: str | None, low: int, high: int) -> int | None:
    if text is None or not re.fullmatch(r"\s*[+-]?\d{1,20}\s*", text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def _float_in(text: str | None, low: float, high: float) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None  # NaN fails both comparisons
