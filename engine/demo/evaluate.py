"""Per-word accuracy of the demo model, read from generated pictures by ``engine.demo.judge``.

    python -m engine.demo.evaluate [--ckpt resources/demo/demo-shapes.safetensors] [--seeds 4]

For every colour word, every shape word and every position word it generates pictures through
the engine (the same path as any checkpoint) and counts how often the picture shows the word:

- colour: "a <colour> <shape> on a white background" (black background for white), all shapes;
  right when the shape's mean colour is nearest to the named one;
- shape: the same pictures; right when the bounding-box fill names the shape;
- background: the same pictures; right when the border is nearest to the named colour;
- position: "a red square <position> on a white background"; right when the centroid is in
  the named cell of the 3x3 grid.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from engine.api import GenerationRequest
from engine.demo import judge
from engine.demo.shapes import COLOURS, POSITIONS, SHAPES, article

STEPS = 20
GUIDANCE = 7.0


def request(prompt: str, seed: int, **overrides: object) -> GenerationRequest:
    """The demo's standard generation: 64x64, 20 steps, guidance 7, the default sampler."""
    base: dict = dict(
        prompt=prompt, width=64, height=64, steps=STEPS, guidance_scale=GUIDANCE, seed=seed
    )
    return GenerationRequest(**(base | overrides))


def background_for(colour: str) -> str:
    return "black" if colour == "white" else "white"


def object_prompt(colour: str, shape: str, position: str = "", background: str = "") -> str:
    background = background or background_for(colour)
    where = f" {position}" if position else ""
    ground = f"{article(background)} {background} background"
    return f"{article(colour)} {colour} {shape}{where} on {ground}"


def evaluate(engine, seeds: int) -> dict[str, dict[str, float]]:
    """{"colour": {word: accuracy}, "shape": ..., "background": ..., "position": ...}."""
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for colour in COLOURS:
        for shape in SHAPES:
            for seed in range(seeds):
                picture = engine.generate(request(object_prompt(colour, shape), seed))
                reading = judge.read(picture.images[0].image)
                hits["colour"][colour].append(reading.has_shape and reading.colour_name == colour)
                hits["shape"][shape].append(reading.has_shape and reading.shape_name == shape)
                bg = background_for(colour)
                hits["background"][bg].append(reading.background_name == bg)
    for position in POSITIONS:
        for seed in range(seeds):
            picture = engine.generate(request(object_prompt("red", "square", position), seed))
            reading = judge.read(picture.images[0].image)
            hits["position"][position].append(reading.has_shape and reading.position == position)
    return {
        kind: {word: float(np.mean(found)) for word, found in words.items()}
        for kind, words in hits.items()
    }


def main(argv: list[str] | None = None) -> None:
    from engine import Engine
    from engine.resources import resource_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=4, help="seeds per prompt")
    args = parser.parse_args(argv)
    engine = Engine(device="cpu", precision="full")
    engine.load_model(args.ckpt or resource_path("demo", "demo-shapes.safetensors"))
    start = time.perf_counter()
    results = evaluate(engine, args.seeds)
    for kind, words in results.items():
        mean = np.mean(list(words.values()))
        row = ", ".join(f"{w} {a:.0%}" for w, a in words.items())
        print(f"{kind} (mean {mean:.0%}): {row}")
    print(f"{time.perf_counter() - start:.0f} s, {args.seeds} seeds per prompt")


if __name__ == "__main__":
    main()
