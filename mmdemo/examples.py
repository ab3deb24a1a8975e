"""The shipped example image: `python -m mmdemo.examples` writes examples/scene.png.

examples/scene.png is the generated Sort-of-CLEVR-NL scene the app shows after "New random scene" with seed 42
(mmdemo.demo.scenes.example_scene: the validation stream, image 0), the scene of README's screenshot. README's commands and
snippets use it, so they run as copied from the repository root; tests/test_readme.py checks that the shipped
file has exactly the pixels this module makes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmdemo.tasks.sort_of_clevr import data as soc

ROOT = Path(__file__).resolve().parent.parent  # the repository
EXAMPLES = ROOT / "examples"
SCENE_SEED = 42  # the app's "New random scene" seed of README's screenshot
SCENE_FILE = "scene.png"


def example_scene(seed: int = SCENE_SEED) -> soc.Scene:
    """The app's generated scene for a seed (same stream as mmdemo.demo.scenes.example_scene)."""
    return soc.random_scene(soc.scene_rng("val", seed, 0))


def scene_pixels(seed: int = SCENE_SEED) -> np.ndarray:
    """(75, 75, 3) uint8: the example scene as the app draws it."""
    return soc.render(example_scene(seed))


def write_scene(out: Path = EXAMPLES, seed: int = SCENE_SEED) -> Path:
    """Write the example scene as out/scene.png (lossless PNG, RGB) and return its path."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    path = out / SCENE_FILE
    Image.fromarray(scene_pixels(seed)).save(path, format="PNG")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.examples", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=EXAMPLES, help="folder to write scene.png into (default: the repository's examples/)")
    args = p.parse_args(argv)
    path = write_scene(args.out)
    scene = example_scene()
    print(f"wrote {path} (seed {SCENE_SEED}): " + ", ".join(f"{o.colour} {o.shape}" for o in scene.objects))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
