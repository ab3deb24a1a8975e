"""Sort-of-CLEVR-NL: scenes, renderers and English questions with ground truth (spec: shared/specs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SIZE = 75  # canvas side, px
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}
SHAPES = ("square", "circle")
HALF_SIDE = 5  # squares are 10 x 10 px
RADIUS = 5  # circles have radius 5 px
MIN_GAP = 12.0  # minimum distance between two centres
TIE_GAP = 0.5  # closest/furthest must win by at least this much
ANSWER_KINDS = (("shape", SHAPES), ("yes / no", ("yes", "no")), ("count", ("1", "2", "3", "4", "5", "6")))  # the ten answers by kind
NONREL = ("shape", "left", "top")
REL = ("closest", "furthest", "count")
SPLIT_IDS = {"train": 0, "test": 1, "val": 2}
TEST_IMAGES = 200


@dataclass(frozen=True)
class SceneObject:
    """One coloured object; its colour is its name."""

    colour: str
    shape: str  # square | circle
    x: int  # centre, px, grows to the right
    y: int  # centre, px, grows downwards


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def find(self, colour: str) -> SceneObject:
        for obj in self.objects:
            if obj.colour == colour:
                return obj
        raise KeyError(colour)

    def to_dict(self) -> list[dict]:
        return [{"colour": o.colour, "shape": o.shape, "x": o.x, "y": o.y} for o in self.objects]


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    family: str  # nonrelational | relational
    subtype: str  # shape | left | top | closest | furthest | count
    colour: str
    template: str = ""  # the wording it was made from ({c} colour, {o} noun); "" when written by hand


# ---------------------------------------------------------------------------------------------- scenes


def _has_ties(objects: list[SceneObject]) -> bool:
    for obj in objects:
        d = sorted(math.dist((obj.x, obj.y), (o.x, o.y)) for o in objects if o is not obj)
        if d[1] - d[0] < TIE_GAP or d[-1] - d[-2] < TIE_GAP:
            return True
    return False


def random_scene(rng: np.random.Generator) -> Scene:
    """Six objects, one per colour, centres >= 12 px apart, no closest/furthest ties."""
    while True:
        objects: list[SceneObject] = []
        for colour in COLOURS:
            for _ in range(1000):
                x, y = (int(v) for v in rng.integers(HALF_SIDE, SIZE - HALF_SIDE - 1, size=2, endpoint=True))
                if all(math.dist((x, y), (o.x, o.y)) >= MIN_GAP for o in objects):
                    break
            else:
                break  # crowded: start the scene again
            objects.append(SceneObject(colour, SHAPES[int(rng.integers(2))], x, y))
        if len(objects) == len(COLOURS) and not _has_ties(objects):
            return Scene(tuple(objects))


def region_masks(objects: list[SceneObject], grid: int) -> np.ndarray:
    """(R,) bool, row-major: the regions of a grid x grid split of the canvas that hold any of the objects.

    The one region rule (attention supervision, the grounding metric, the reading figures): a region holds an
    object when its cell overlaps the object's 10 x 10 px footprint. Read-only (shared by a cache: training asks
    for the same few positions about 40 times a step)."""
    return _region_masks(tuple((o.x, o.y) for o in objects), grid)


@lru_cache(maxsize=65536)
def _region_masks(centres: tuple[tuple[float, float], ...], grid: int) -> np.ndarray:
    if not centres:
        masks = np.zeros(grid * grid, dtype=bool)
    else:
        edges = np.arange(grid + 1) * (SIZE / grid)  # cell boundaries, px
        lo, hi = edges[:-1], edges[1:]
        xy = np.array(centres, dtype=np.float64)  # (O, 2)
        cols = (lo[None] < xy[:, :1] + HALF_SIDE) & (xy[:, :1] - HALF_SIDE < hi[None])  # (O, g)
        rows = (lo[None] < xy[:, 1:] + HALF_SIDE) & (xy[:, 1:] - HALF_SIDE < hi[None])  # (O, g)
        masks = (rows[:, :, None] & cols[:, None, :]).any(0).reshape(-1)  # row-major (R,)
    masks.flags.writeable = False
    return masks


def scene_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """Independent stream per (split, seed, image): splits never share a scene stream."""
    return np.random.default_rng([SPLIT_IDS[split], seed, index])


# ------------------------------------------------------------------------------------------- rendering


def render(scene: Scene, supersample: int = 1, size_jitter: float = 0.0) -> np.ndarray:
    """Draw the scene as (75, 75, 3) uint8. supersample > 1 anti-aliases; size_jitter grows/shrinks shapes (px)."""
    s = supersample
    canvas = np.full((SIZE * s, SIZE * s, 3), 255, dtype=np.float32)
    centres = (np.arange(SIZE * s, dtype=np.float32) + 0.5) / s  # pixel centres in image units
    xs, ys = centres[None, :], centres[:, None]
    for obj in scene.objects:
        if obj.shape == "square":
            half = HALF_SIDE + size_jitter
            mask = (np.abs(xs - obj.x) < half) & (np.abs(ys - obj.y) < half)
        else:
            r = RADIUS + size_jitter
            mask = (xs - obj.x) ** 2 + (ys - obj.y) ** 2 <= r * r
        canvas[mask] = COLOURS[obj.colour]
    if s > 1:
        canvas = canvas.reshape(SIZE, s, SIZE, s, 3).mean(axis=(1, 3))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def render_augmented(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """A randomly chosen renderer (hard or anti-aliased, shapes +-1 px) so no model learns one renderer."""
    return render(scene, supersample=int(rng.choice([1, 4])), size_jitter=float(rng.uniform(-1.0, 1.0)))


# ------------------------------------------------------------------------------------------- answers


def answer(scene: Scene, subtype: str, colour: str, negate: bool = False) -> str:
    """The spec's answer for a question about the object of `colour`; negate flips left->right, top->bottom."""
    x = scene.find(colour)
    others = [o for o in scene.objects if o is not x]
    if subtype == "shape":
        return x.shape
    if subtype == "left":
        return "yes" if (x.x < SIZE / 2) != negate else "no"
    if subtype == "top":
        return "yes" if (x.y < SIZE / 2) != negate else "no"
    if subtype in ("closest", "furthest"):
        dist = [math.dist((x.x, x.y), (o.x, o.y)) for o in others]
        pick = int(np.argmin(dist)) if subtype == "closest" else int(np.argmax(dist))
        return others[pick].shape
    if subtype == "count":
        return str(sum(o.shape == x.shape for o in scene.objects))
    raise ValueError(f"unknown subtype {subtype!r}")


# ------------------------------------------------------------------------------------------ wordings
# {c} is the colour, {o} the noun for an object. "negate" wordings ask the opposite side.

CANONICAL = {
    "shape": "What shape is the {c} object?",
    "left": "Is the {c} object on the left side of the image?",
    "top": "Is the {c} object in the top half of the image?",
    "closest": "What shape is the object closest to the {c} object?",
    "furthest": "What shape is the object furthest from the {c} object?",
    "count": "How many objects have the same shape as the {c} object?",
}

TRAIN_WORDINGS: dict[str, list[tuple[str, bool]]] = {
    "shape": [
        ("What shape is the {c} {o}?", False),
        ("What is the shape of the {c} {o}?", False),
        ("Is the {c} {o} a square or a circle?", False),
        ("Which shape does the {c} {o} have?", False),
        ("{c} {o}: what shape?", False),
        ("Tell me the shape of the {c} {o}.", False),
    ],
    "left": [
        ("Is the {c} {o} on the left side of the image?", False),
        ("Is the {c} {o} on the left?", False),
        ("Is the {c} {o} in the left half of the picture?", False),
        ("Does the {c} {o} lie on the left side?", False),
        ("Is the {c} {o} on the right side of the image?", True),
        ("Is the {c} {o} on the right?", True),
        ("Is the {c} {o} in the right half of the picture?", True),
    ],
    "top": [
        ("Is the {c} {o} in the top half of the image?", False),
        ("Is the {c} {o} at the top?", False),
        ("Is the {c} {o} in the upper half of the picture?", False),
        ("Does the {c} {o} lie in the top half?", False),
        ("Is the {c} {o} in the bottom half of the image?", True),
        ("Is the {c} {o} at the bottom?", True),
        ("Is the {c} {o} in the lower half of the picture?", True),
    ],
    "closest": [
        ("What shape is the object closest to the {c} {o}?", False),
        ("What is the shape of the object nearest to the {c} {o}?", False),
        ("Which shape is closest to the {c} {o}?", False),
        ("What shape is the nearest object to the {c} {o}?", False),
        ("The thing closest to the {c} {o} is what shape?", False),
    ],
    "furthest": [
        ("What shape is the object furthest from the {c} {o}?", False),
        ("What is the shape of the object farthest from the {c} {o}?", False),
        ("Which shape is furthest away from the {c} {o}?", False),
        ("What shape is the most distant object from the {c} {o}?", False),
        ("The thing farthest from the {c} {o} is what shape?", False),
    ],
    "count": [
        ("How many objects have the same shape as the {c} {o}?", False),
        ("How many objects share the shape of the {c} {o}?", False),
        ("Count the objects with the same shape as the {c} {o}.", False),
        ("How many things are shaped like the {c} {o}?", False),
        ("What is the number of objects with the same shape as the {c} {o}?", False),
    ],
}

# Kept out of training: used only to test robustness to rewording. Written before the models that are
# tested with them were trained; none of these sentences is in TRAIN_WORDINGS (some are close to one).
HELDOUT_WORDINGS: dict[str, list[tuple[str, bool]]] = {
    "shape": [
        ("Can you tell me what shape the {c} {o} is?", False),
        ("The {c} {o} has which shape?", False),
        ("Could you name the shape of the {c} {o} for me?", False),
    ],
    "left": [
        ("Would you say the {c} {o} is on the left side?", False),
        ("Can you see the {c} {o} on the left side of the picture?", False),
        ("Would you say that the {c} {o} sits on the right?", True),
    ],
    "top": [
        ("Would you say the {c} {o} is in the top half?", False),
        ("Can you see the {c} {o} in the upper half of the image?", False),
        ("Would you say that the {c} {o} sits in the bottom half?", True),
    ],
    "closest": [
        ("Can you tell me the shape of the object nearest the {c} {o}?", False),
        ("Which shape does the nearest neighbour of the {c} {o} have?", False),
    ],
    "furthest": [
        ("Can you tell me the shape of the object farthest from the {c} {o}?", False),
        ("Which shape does the object farthest away from the {c} {o} have?", False),
    ],
    "count": [
        ("Can you count the objects with the same shape as the {c} {o}?", False),
        ("How many objects are the same shape as the {c} {o}?", False),
    ],
}
# Conversational frames around a training question (train wording with frame_prob > 0): they teach that
# filler before or after a question does not change it. None of them is a held-out form ("Can you ...",
# "Could you ...", "Would you ...").
FRAMES = (
    "Please answer: {q}",
    "Quick question: {q}",
    "Hey, {q}",
    "Look at the picture. {q}",
    "I wonder: {q}",
    "Question: {q}",
    "{q} Thanks.",
    "{q} Please.",
)
# Words a training question may lose (train wording with word_drop > 0): one of them is dropped from a share
# word_drop of the questions, so the answer does not hang on a small word ("closest the", "shape the").
# None of them names a colour, a shape, a side or a relation.
FUNCTION_WORDS = frozenset({"the", "to", "of", "a", "from", "is"})
NOUNS = ("object", "object", "thing", "shape", "one")
COLOUR_ALIASES = {"gray": ("gray", "grey")}


def pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of options: the same draw as rng.choice(options) (one rng.integers), without building an array."""
    return options[int(rng.integers(len(options)))]


def _surface_noise(text: str, rng: np.random.Generator) -> str:
    """Case, punctuation and spacing changes that must not change the answer."""
    r = rng.random()
    if r < 0.15:
        text = text.upper()
    elif r < 0.3:
        text = text.lower()
    if rng.random() < 0.3:
        text = text.rstrip("?.!") + pick(rng, ("", "?", "??", ".", "!"))
    if rng.random() < 0.2:
        text = "  ".join(text.split(" ")) + " "
    return text


def drop_function_word(text: str, rng: np.random.Generator) -> str:
    """text without one of its FUNCTION_WORDS (drawn uniformly; text unchanged when it has none)."""
    words = text.split(" ")
    found = [i for i, w in enumerate(words) if w.lower() in FUNCTION_WORDS]
    if found:
        del words[found[int(rng.integers(len(found)))]]
    return " ".join(words)


def question_text(
    subtype: str, colour: str, rng: np.random.Generator, wording: str = "canonical", frame_prob: float = 0.0,
    word_drop: float = 0.0,
) -> tuple[str, bool, str]:
    """(text, negate, template) of one question, without a scene: make_question's wording half (the
    spoken questions are voiced from these; the answer needs the scene). word_drop (train wording): the
    share of questions that lose one function word. Draws nothing extra when frame_prob or word_drop is 0."""
    negate = False
    if wording == "canonical":
        template = CANONICAL[subtype]
        text = template.format(c=colour)
    else:
        bank = TRAIN_WORDINGS if wording == "train" else HELDOUT_WORDINGS
        template, negate = bank[subtype][int(rng.integers(len(bank[subtype])))]
        name = pick(rng, COLOUR_ALIASES.get(colour, (colour,))) if wording == "train" else colour
        noun = pick(rng, NOUNS) if wording == "train" else "object"
        text = template.format(c=name, o=noun)
        if wording == "train" and frame_prob > 0 and rng.random() < frame_prob:
            text = FRAMES[int(rng.integers(len(FRAMES)))].format(q=text)
        if wording == "train" and word_drop > 0 and rng.random() < word_drop:
            text = drop_function_word(text, rng)
        text = text[0].upper() + text[1:]
        if wording == "train":
            text = _surface_noise(text, rng)
    return text, negate, template


def make_question(
    scene: Scene, subtype: str, colour: str, rng: np.random.Generator, wording: str = "canonical", frame_prob: float = 0.0,
    word_drop: float = 0.0,
) -> Question:
    """One question; wording is canonical (spec templates), train (paraphrases + noise; a share frame_prob
    of them wrapped in one of FRAMES, a share word_drop without one function word) or heldout."""
    text, negate, template = question_text(subtype, colour, rng, wording, frame_prob, word_drop)
    family = "nonrelational" if subtype in NONREL else "relational"
    return Question(text, answer(scene, subtype, colour, negate), family, subtype, colour, template)


def make_questions(
    scene: Scene, rng: np.random.Generator, wording: str = "canonical", frame_prob: float = 0.0, word_drop: float = 0.0
) -> list[Question]:
    """The spec's 20 questions: 10 non-relational then 10 relational, subtypes and colours uniform."""
    colours = list(COLOURS)
    out = []
    for family in (NONREL, REL):
        for _ in range(10):
            subtype = family[int(rng.integers(len(family)))]
            colour = colours[int(rng.integers(len(colours)))]
            out.append(make_question(scene, subtype, colour, rng, wording, frame_prob, word_drop))
    return out


@dataclass(frozen=True)
class Sample:
    """A scene, its rendered image and its 20 questions."""

    index: int
    scene: Scene
    image: np.ndarray  # (75, 75, 3) uint8
    questions: list[Question]


def generate(split: str, num_images: int, seed: int = 0, wording: str = "canonical", augment: bool = False) -> list[Sample]:
    """Deterministic by (split, seed): the same call always returns the same scenes and questions."""
    out = []
    for i in range(num_images):
        rng = scene_rng(split, seed, i)
        scene = random_scene(rng)
        image = render_augmented(scene, rng) if augment else render(scene)
        out.append(Sample(i, scene, image, make_questions(scene, rng, wording)))
    return out


def test_split(wording: str = "canonical") -> list[Sample]:
    """The spec's 200-image test split (4,000 questions), seeded and disjoint from training."""
    return generate("test", TEST_IMAGES, seed=0, wording=wording)


# ---------------------------------------------------------------------------- editing and free text

EDIT_ACTIONS = ("move", "reshape", "swap colour", "remove")
_SUBTYPE_WORDS = [  # checked in order: relational words first, they also contain "shape"
    ("closest", ("closest", "nearest")),
    ("furthest", ("furthest", "farthest", "most distant")),
    ("count", ("how many", "count", "number of")),
    ("left", ("left", "right")),
    ("top", ("top", "upper", "above", "bottom", "lower", "below")),
    ("shape", ("shape", "square or", "circle or")),
]


def scene_from_dicts(objects: list[dict]) -> Scene:
    """Inverse of Scene.to_dict, with checks; raises ValueError on anything malformed."""
    out = []
    for o in objects:
        if o.get("colour") not in COLOURS or o.get("shape") not in SHAPES:
            raise ValueError(f"bad object {o!r}")
        out.append(SceneObject(o["colour"], o["shape"], int(np.clip(o["x"], 0, SIZE - 1)), int(np.clip(o["y"], 0, SIZE - 1))))
    return Scene(tuple(out))


def nearest_free_spot(scene: Scene, colour: str, x: int, y: int) -> tuple[int, int]:
    """Where the `colour` object can go nearest to (x, y): on the canvas and >= MIN_GAP from every other centre."""
    lo, hi = HALF_SIDE, SIZE - HALF_SIDE - 1
    others = np.array([(o.x, o.y) for o in scene.objects if o.colour != colour], dtype=np.float64).reshape(-1, 2)  # (O, 2)
    grid = np.stack(np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1), indexing="xy"), -1).reshape(-1, 2)  # (N, 2) as (x, y)
    gaps = np.sqrt(((grid[:, None, :] - others[None]) ** 2).sum(-1)).min(1) if len(others) else np.full(len(grid), np.inf)
    free = grid[gaps >= MIN_GAP]
    if not len(free):
        raise ValueError(f"there is no free spot for the {colour} object")
    want = np.clip([x, y], lo, hi)
    d = ((free - want) ** 2).sum(1)
    best = free[int(np.argmin(d))]  # first minimum: ties go to the smaller y, then x (row-major grid)
    return int(best[0]), int(best[1])


def edit_scene(scene: Scene, colour: str, action: str, x: int = 0, y: int = 0, other: str = "") -> Scene:
    """A counterfactual scene: move, reshape, swap colours with `other`, or remove the `colour` object.

    A move keeps the spec's minimum gap: the object goes to the nearest free spot to (x, y)
    (nearest_free_spot; the caller can compare the result with what it asked for)."""
    target = scene.find(colour)
    objects = list(scene.objects)
    if action == "move":
        fx, fy = nearest_free_spot(scene, colour, x, y)
        objects = [SceneObject(o.colour, o.shape, fx, fy) if o is target else o for o in objects]
    elif action == "reshape":
        flipped = "circle" if target.shape == "square" else "square"
        objects = [SceneObject(o.colour, flipped, o.x, o.y) if o is target else o for o in objects]
    elif action == "swap colour":
        partner = scene.find(other)
        swap = {colour: other, other: colour}
        objects = [SceneObject(swap[o.colour], o.shape, o.x, o.y) if o in (target, partner) else o for o in objects]
    elif action == "remove":
        if len(objects) <= 2:
            raise ValueError("a scene needs at least two objects")
        objects = [o for o in objects if o is not target]
    else:
        raise ValueError(f"unknown action {action!r}")
    return Scene(tuple(objects))


# ------------------------------------------------------------------------------ is it a generated scene?
WHITE_MIN = 230  # a channel at least this bright: canvas
COLOUR_TOL = 40.0  # RGB distance to a white-to-spec-colour blend (anti-aliased edges included)
MIN_WHITE_SHARE = 0.75  # the spec's canvas is mostly white (six objects cover at most ~15% of it) ...
MIN_INK_SHARE = 0.005  # ... at least one object is not gray (one small circle is ~1% of the canvas) ...
MIN_COLOUR_SHARE = 0.85  # ... and almost everything that is not white is one of the six colours


def scene_likeness(pixels: np.ndarray) -> tuple[float, float, float]:
    """(share of near-white pixels, share of the other pixels within COLOUR_TOL of a white-to-spec-colour
    blend, share of all pixels near one of the five colours that are not gray)."""
    rgb = np.asarray(pixels, dtype=np.float64).reshape(-1, 3)  # (N, 3)
    white = rgb.min(1) >= WHITE_MIN
    ink = rgb[~white]  # (M, 3)
    if not len(ink):
        return 1.0, 0.0, 0.0
    w = np.full(3, 255.0)
    dists = []
    for c in COLOURS.values():  # distance to the segment white -> colour: anti-aliased edges lie on it
        d = np.asarray(c, dtype=np.float64) - w
        t = np.clip(((ink - w) @ d) / (d @ d), 0.0, 1.0)
        dists.append(np.linalg.norm(ink - (w + t[:, None] * d), axis=1))
    dist = np.stack(dists)  # (6, M)
    near = dist.min(0) <= COLOUR_TOL
    chroma = near & (np.array([c != "gray" for c in COLOURS])[dist.argmin(0)])
    return float(white.mean()), float(near.mean()), float(chroma.sum() / len(rgb))


def looks_like_scene(pixels: np.ndarray) -> bool:
    """Does an image (H, W, 3 uint8) look like a Sort-of-CLEVR-NL scene: a white canvas with objects in the six colours?"""
    white, colour, chroma = scene_likeness(pixels)
    return white >= MIN_WHITE_SHARE and colour >= MIN_COLOUR_SHARE and chroma >= MIN_INK_SHARE


def parse_question(text: str) -> tuple[str, str, bool] | None:
    """(subtype, colour, negate) for a question in the spirit of the spec, or None if not understood."""
    lower = " ".join(text.lower().replace("grey", "gray").split())
    colours = [c for c in COLOURS if c in lower.replace("?", " ").split() or f"{c}'" in lower]
    if len(colours) != 1:
        return None
    for subtype, words in _SUBTYPE_WORDS:
        hits = [w for w in words if w in lower]
        if hits:
            negate = any(w in hits for w in ("right", "bottom", "lower", "below"))
            return subtype, colours[0], negate
    return None


def true_answer(scene: Scene, text: str) -> str | None:
    """The ground-truth answer to a free-text question about a generated scene, when it can be parsed."""
    parsed = parse_question(text)
    if parsed is None:
        return None
    subtype, colour, negate = parsed
    try:
        return answer(scene, subtype, colour, negate)
    except KeyError:
        return None
