"""Generated scenes: their state and pixel keys, the examples, the seed rule and the scene editor."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmdemo.errors import InputError
from mmdemo.inference import load_image, prepare_image
from mmdemo.limits import MAX_SEED
from mmdemo.tasks.sort_of_clevr import data as soc

SEED_RULE = f"The seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random scene."
NO_IMAGE = "Upload an image, pick an example, or generate a scene."
EXAMPLE_SEEDS = (3, 14, 27, 42, 58, 99)
EXAMPLE_QUESTIONS = (
    "What shape is the red object?",
    "Is the blue object on the left side of the image?",
    "What shape is the object closest to the green object?",
    "How many objects have the same shape as the orange object?",
    "Is the gray object in the top half of the image?",
    "What shape is the object furthest from the yellow object?",
)


def pixel_key(pixels: np.ndarray) -> str:
    """Identity of an image by its exact pixels: a scene's truth applies to these pixels and no others."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha1(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def example_scene(seed: int) -> soc.Scene:
    """The app's generated scene for a seed (the validation stream, image 0)."""
    return soc.random_scene(soc.scene_rng("val", seed, 0))


def scene_state(scene: soc.Scene, source: str) -> dict:
    """What the app remembers about a generated scene: its objects, the key of its pixels and where it came from."""
    return {"objects": scene.to_dict(), "key": pixel_key(soc.render(scene)), "source": source}


def scene_caption(source: str) -> str:
    return f"**{source[0].upper() + source[1:]}** (ground truth known)."


def example_files(cache: Path) -> list[list[str]]:
    """The Ask tab's examples as [image file, question] rows (the images written once into cache)."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for seed, question in zip(EXAMPLE_SEEDS, EXAMPLE_QUESTIONS):
        path = cache / f"scene-{seed}.png"
        if not path.is_file():
            Image.fromarray(soc.render(example_scene(seed))).save(path)
        out.append([str(path), question])
    return out


@dataclass
class NewScene:
    """A scene shown: its image, its state (the ground truth) and the caption that says where it came from."""

    image: np.ndarray
    state: dict
    caption: str


@dataclass
class Edit:
    """The editor's outcome: the message always; the new scene only when the edit was done (else None: the image stays)."""

    message: str
    scene: NewScene | None = None


class Scenes:
    """The generated scenes the app knows the truth of: the examples, and the one of each session (its state)."""

    def __init__(self) -> None:
        self.examples = {pixel_key(soc.render(example_scene(s))): scene_state(example_scene(s), f"example scene, seed {s}")
                         for s in EXAMPLE_SEEDS}

    @staticmethod
    def random(seed: float | None) -> NewScene:
        """A new generated scene for a seed; seed -1 (or empty) draws a new seed every call."""
        usable = seed is None or seed == -1 or (isinstance(seed, (int, float)) and 0 <= seed <= MAX_SEED and float(seed).is_integer())
        if not usable:  # a seed past 64 bits cannot even be sent back: the client would wait forever
            raise InputError(SEED_RULE)
        seed = int(np.random.default_rng().integers(0, 1_000_000)) if seed is None or seed < 0 else int(seed)
        scene = example_scene(seed)
        return NewScene(soc.render(scene), scene_state(scene, f"generated scene, seed {seed}"), scene_caption(f"generated scene, seed {seed}"))

    def known(self, pixels: np.ndarray, state: dict | None) -> dict | None:
        """The scene state whose pixels these are: the current generated/edited scene, or an example; else None."""
        key = pixel_key(pixels)
        if state and state.get("key") == key:
            return state
        return self.examples.get(key)

    def scene_of(self, pixels: np.ndarray, image_size: int, state: dict | None) -> soc.Scene | None:
        """The generated scene these pixels show (ground truth), for a model of the scenes' size; None for anything else."""
        known = self.known(pixels, state) if image_size == soc.SIZE else None
        return soc.scene_from_dicts(known["objects"]) if known else None

    def describe(self, image: Any, state: dict | None) -> tuple[dict | None, str]:
        """On every change of image: the state kept (only if it belongs to the new pixels) and what the image is."""
        if image is None:
            return None, NO_IMAGE
        try:
            pixels = prepare_image(load_image(image), soc.SIZE)
        except InputError as e:
            return None, html.escape(str(e))
        known = self.known(pixels, state)
        if known is not None:
            return known, scene_caption(known["source"])
        if not soc.looks_like_scene(pixels):
            return None, ("Uploaded image, **not a generated scene** (the scene models only know white canvases with six colours): "
                          "answers mean nothing; for photos use the **Photos** tab.")
        return None, "Uploaded image (looks like a generated scene; no ground truth)."

    @staticmethod
    def edit(state: dict | None, colour: str, action: str, x: float, y: float, other: str) -> Edit:
        """A counterfactual of the current generated scene. An edit that cannot be done is a message (no new scene)."""
        if not state:
            return Edit("Scene editing needs a generated scene: click **New random scene** first (or pick an example).")
        scene = soc.scene_from_dicts(state["objects"])
        try:
            edited = soc.edit_scene(scene, colour, action, int(x), int(y), other)
        except KeyError:
            return Edit(f"There is no {html.escape(colour)} object in this scene (it was removed).")
        except ValueError as e:
            return Edit(f"Not done: {html.escape(str(e))}.")
        message = f"Done: {action} the {colour} object."
        if action == "move":
            placed = edited.find(colour)
            want = (int(np.clip(x, soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1)), int(np.clip(y, soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1)))
            if (placed.x, placed.y) != want:
                message = (f"Moved the {colour} object to ({placed.x}, {placed.y}), the nearest free spot to ({want[0]}, {want[1]}): "
                           f"objects keep {soc.MIN_GAP:g} px between centres.")
        return Edit(message, Scenes.shown(edited, state))

    @staticmethod
    def shown(edited: soc.Scene, state: dict) -> NewScene:
        """An edit of the scene in state, as the page shows it: its pixels, its state and a caption naming its source."""
        new_state = scene_state(edited, f"edited scene ({state['source'].split(' (')[0]})")
        return NewScene(soc.render(edited), new_state, scene_caption(new_state["source"]))
