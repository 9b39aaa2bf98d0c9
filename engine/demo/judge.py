"""What a shapes picture shows: background, shape colour, shape kind and place.

Torch-free, so the content tests and ``engine.demo.evaluate`` read generated pictures with the
same rules, and a test checks the rules on pictures drawn by ``engine.demo.shapes``.

- background: the median of the border pixels (a one-pixel frame);
- foreground: pixels farther than ``FOREGROUND_DISTANCE`` (RGB, 0-255) from the background;
- colour: the mean foreground pixel, named by the nearest of ``shapes.COLOURS``;
- shape: how much of its bounding box the foreground fills (circle pi/4 = 0.79, square 1,
  triangle 0.5); pixels with fewer than two foreground neighbours (of four) do not count, so
  a few stray pixels do not stretch the box;
- place: the 3x3 grid cell of the foreground's centroid, as ``shapes.POSITIONS`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demo.shapes import COLOURS, POSITIONS

FOREGROUND_DISTANCE = 80.0
MIN_FOREGROUND = 0.02  # of the picture: less is "no shape"
# Fill of the bounding box between the ideal values: triangle 0.5 | circle 0.79 | square 1.
TRIANGLE_BELOW = 0.67
SQUARE_ABOVE = 0.9


@dataclass(frozen=True)
class Reading:
    background: np.ndarray  # (3,) RGB
    foreground: np.ndarray  # (H, W) bool
    colour: np.ndarray  # (3,) mean RGB of the foreground (zeros when there is none)
    fill: float  # foreground pixels / bounding-box area
    centre: tuple[float, float]  # (x, y) as fractions of the width and height

    @property
    def coverage(self) -> float:
        return float(self.foreground.mean())

    @property
    def has_shape(self) -> bool:
        return self.coverage >= MIN_FOREGROUND

    @property
    def colour_name(self) -> str:
        return nearest_colour(self.colour)

    @property
    def background_name(self) -> str:
        return nearest_colour(self.background)

    @property
    def shape_name(self) -> str:
        return shape_from_fill(self.fill)

    @property
    def position(self) -> str:
        col = min(int(self.centre[0] * 3), 2)
        row = min(int(self.centre[1] * 3), 2)
        return POSITIONS[3 * row + col]


def shape_from_fill(fill: float) -> str:
    """The shape whose ideal fill of its bounding box is nearest: triangle, circle, square."""
    if fill < TRIANGLE_BELOW:
        return "triangle"
    return "square" if fill > SQUARE_ABOVE else "circle"


def nearest_colour(rgb: np.ndarray) -> str:
    names = list(COLOURS)
    table = np.array([COLOURS[n] for n in names], dtype=np.float64)  # (K, 3)
    return names[int(np.argmin(np.linalg.norm(table - rgb, axis=1)))]


def border(picture: np.ndarray) -> np.ndarray:
    """(4*(S-1), 3) the pixels of the one-pixel frame of an (S, S, 3) picture."""
    p = picture.astype(np.float64)
    return np.concatenate([p[0, :], p[-1, :], p[1:-1, 0], p[1:-1, -1]])


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """(H, W) count of each pixel's 4-neighbours in ``mask`` (outside the picture: none)."""
    m = np.pad(mask, 1).astype(np.int8)
    return m[:-2, 1:-1] + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:]


def read(picture: np.ndarray) -> Reading:
    """Read an (H, W, 3) uint8 picture of one shape on a plain background."""
    h, w, _ = picture.shape
    background = np.median(border(picture), axis=0)  # (3,)
    distance = np.linalg.norm(picture.astype(np.float64) - background, axis=2)  # (H, W)
    mask = distance > FOREGROUND_DISTANCE
    if not mask.any():
        return Reading(background, mask, np.zeros(3), 0.0, (0.5, 0.5))
    solid = mask & (_neighbours(mask) >= 2)
    ys, xs = np.nonzero(solid if solid.any() else mask)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    box = (y1 - y0 + 1) * (x1 - x0 + 1)
    inside = solid[y0 : y1 + 1, x0 : x1 + 1].sum()
    colour = picture[mask].astype(np.float64).mean(axis=0)
    centre = ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h)
    return Reading(background, mask, colour, float(inside / box), centre)
