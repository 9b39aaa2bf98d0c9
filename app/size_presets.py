"""The size presets: smallest area first, squares before their same-area neighbours, and the
loaded model's native size (what it was trained at, its best pictures) at the top."""

from __future__ import annotations

Size = tuple[int, int]

# The size the controls start at (GenerationRequest's default, SD 1.x's native size): what a
# window that has loaded no model yet treats as the "previous model's" native size.
DEFAULT_NATIVE = 512

PRESETS: tuple[Size, ...] = (
    (128, 128),  # a quick look: seconds even on a CPU
    (256, 256),
    (384, 384),
    (512, 512),
    (512, 768),
    (768, 512),
    (640, 640),
    (768, 768),
)


def ordered_presets(native_size: int | None = None) -> list[Size]:
    """Presets by area (squares first); the native square first of all when it is known."""
    by_area = sorted(PRESETS, key=lambda s: (s[0] * s[1], s[0] != s[1], s[0]))
    if not native_size:
        return by_area
    native = (native_size, native_size)
    return [native, *(s for s in by_area if s != native)]


def preset_label(size: Size, native_size: int | None = None) -> str:
    w, h = size
    return f"{w} × {h}" + ("  (native)" if (w, h) == (native_size, native_size) else "")


def size_for_model(current: Size, previous_native: int | None, native: int | None) -> Size:
    """The size to use after loading a model of ``native`` size: the size follows the models
    while it is still the previous model's native square (the person has not chosen another);
    a size the person chose is kept."""
    before = previous_native or DEFAULT_NATIVE
    if native and native != before and current == (before, before):
        return (native, native)
    return current
