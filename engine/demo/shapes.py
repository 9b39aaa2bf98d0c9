"""Pictures of simple shapes with captions from a fixed grammar: the demo model's training data.

Torch-free (numpy and PIL), so tests can draw the same pictures and read the same vocabulary.
Everything comes from an explicit ``numpy.random.Generator``: a seed gives the same stream.

The caption grammar (version ``GRAMMAR_VERSION``; documented in the README as well)::

    caption  := object [" and " object] " on " article " " colour " background"
    object   := article " " colour " " shape [" " position]
    article  := "an" before a vowel (orange), else "a"
    colour   := red | green | blue | yellow | white | black | orange | purple
    shape    := circle | square | triangle
    position := in the top left | at the top | in the top right | on the left | in the center
              | on the right | in the bottom left | at the bottom | in the bottom right

e.g. "a red circle on a white background", "a blue square in the top left and a yellow triangle
on a black background". A position names the cell of a 3x3 grid holding the shape's centre; a
caption without one leaves the place open. Shapes never share a colour with the background or
with each other, and two shapes never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

GRAMMAR_VERSION = "shapes-1"

# Saturated, well-separated colours: the model must tell them apart after a tiny VAE.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "orange": (245, 120, 20),  # as far from red as from yellow
    "purple": (140, 50, 180),
}
SHAPES = ("circle", "square", "triangle")
# Row-major over a 3x3 grid: POSITIONS[3 * row + col].
POSITIONS = (
    "in the top left",
    "at the top",
    "in the top right",
    "on the left",
    "in the center",
    "on the right",
    "in the bottom left",
    "at the bottom",
    "in the bottom right",
)

SUPERSAMPLE = 4  # shapes are drawn 4x larger, then box-filtered: anti-aliased edges


@dataclass(frozen=True)
class Shape:
    """One filled shape; centre and half-size are fractions of the picture's side."""

    kind: str  # one of SHAPES
    colour: str  # a key of COLOURS
    cx: float
    cy: float
    half: float  # half the side of the shape's bounding box

    @property
    def cell(self) -> int:
        """Index into POSITIONS of the 3x3 grid cell holding the centre."""
        col = min(int(self.cx * 3), 2)
        row = min(int(self.cy * 3), 2)
        return 3 * row + col


@dataclass(frozen=True)
class Scene:
    background: str
    shapes: tuple[Shape, ...]


def _place(rng: np.random.Generator, cell: int, half: float) -> tuple[float, float]:
    """A centre inside grid ``cell``, jittered, keeping the whole shape inside the picture."""
    row, col = divmod(cell, 3)
    cx = (col + 0.5) / 3 + rng.uniform(-0.07, 0.07)
    cy = (row + 0.5) / 3 + rng.uniform(-0.07, 0.07)
    margin = half + 0.02
    return float(np.clip(cx, margin, 1 - margin)), float(np.clip(cy, margin, 1 - margin))


def _overlap(a: Shape, b: Shape) -> bool:
    gap = 0.03  # keep a visible strip of background between the two
    return abs(a.cx - b.cx) < a.half + b.half + gap and abs(a.cy - b.cy) < a.half + b.half + gap


def random_scene(rng: np.random.Generator) -> Scene:
    """One or two shapes (60% / 40%) of distinct colours on a plain background."""
    names = list(COLOURS)
    count = 1 if rng.random() < 0.6 else 2
    picked = rng.choice(len(names), size=count + 1, replace=False)
    background, colours = names[picked[0]], [names[i] for i in picked[1:]]
    while True:
        cells = rng.choice(9, size=count, replace=False)
        low, high = (0.12, 0.24) if count == 1 else (0.09, 0.16)
        shapes = []
        for colour, cell in zip(colours, cells, strict=True):
            half = float(rng.uniform(low, high))
            cx, cy = _place(rng, int(cell), half)
            shapes.append(Shape(str(rng.choice(SHAPES)), colour, cx, cy, half))
        if count == 1 or not _overlap(shapes[0], shapes[1]):
            return Scene(background, tuple(shapes))


def caption(scene: Scene, rng: np.random.Generator, p_position: float = 0.5) -> str:
    """A caption of ``scene`` in the grammar; positions are named with probability p_position
    (for all shapes or none), and two shapes are named in random order."""
    shapes = list(scene.shapes)
    if len(shapes) == 2 and rng.random() < 0.5:
        shapes.reverse()
    with_position = rng.random() < p_position
    objects = [
        f"{article(s.colour)} {s.colour} {s.kind}"
        + (f" {POSITIONS[s.cell]}" if with_position else "")
        for s in shapes
    ]
    return " and ".join(objects) + f" on {article(scene.background)} {scene.background} background"


def article(word: str) -> str:
    """ "an" before a vowel ("an orange circle"), else "a"."""
    return "an" if word[0] in "aeiou" else "a"


def _polygon(shape: Shape, size: int) -> list[tuple[float, float]]:
    """Corner points in pixels (of the supersampled canvas) of a square or triangle."""
    x, y, h = shape.cx * size, shape.cy * size, shape.half * size
    if shape.kind == "square":
        return [(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h)]
    return [(x, y - h), (x + h, y + h), (x - h, y + h)]  # apex up, fills half its box


def render(scene: Scene, size: int) -> np.ndarray:
    """(size, size, 3) uint8 picture of ``scene``."""
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), COLOURS[scene.background])
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        fill = COLOURS[shape.colour]
        if shape.kind == "circle":
            x, y, h = shape.cx * big, shape.cy * big, shape.half * big
            draw.ellipse([x - h, y - h, x + h, y + h], fill=fill)
        else:
            draw.polygon(_polygon(shape, big), fill=fill)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def batch(
    rng: np.random.Generator, count: int, size: int, p_position: float = 0.5
) -> tuple[np.ndarray, list[str], list[Scene]]:
    """``count`` random pictures (count, size, size, 3) uint8, their captions and scenes."""
    scenes = [random_scene(rng) for _ in range(count)]
    pictures = np.stack([render(s, size) for s in scenes])
    return pictures, [caption(s, rng, p_position) for s in scenes], scenes
