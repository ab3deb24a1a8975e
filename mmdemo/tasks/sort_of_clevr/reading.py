"""Per-step truth: does the attention read the question word by word?

Generated scenes know where every object is and which word names it, so each step's attention can be
checked (hops are (T, K, R) per question: T steps, K hops, R regions):

- causal: pairs of questions on one image that share a prefix (at least one word after [CLS]) and then
  differ; a reader whose step t knows only tokens 1..t attends identically at the shared steps
  (every hop, max abs difference <= CAUSAL_TOL). The share of pairs for which that holds.
- no_peek: at the steps before the colour word, hop 1's mass on the named object minus its mean mass on
  each other object. A word-by-word reader cannot know the object yet: about 0. One that reads ahead: near 1.
- spread: at the steps before the colour word, how evenly every hop spreads over the regions (entropy /
  log R, mean over steps and hops): 1 = evenly, as a reader with nothing named yet should; near 0 = a
  confident look at something the question has not named (no_peek stays about 0 for a look at a random object).
- onset: at the colour word's step, hop 1's most-attended region holds the named object.
- relate: relational questions, at the colour word's step: hop 2's most-attended region holds the answer
  object (closest / furthest), or hop 2 puts >= 0.5 of its mass on the same-shape objects (count).

Regions "hold" an object by the one region rule (data.region_masks, also the grounding metric).
Spoken questions (no tokens) have no shared-prefix pairs, so causal is None for them (tests check their
causality directly); the other figures use the first step that has heard the whole colour word.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import numpy as np

from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.supervision import COLOUR_WORDS, colour_step, hop2_objects

CAUSAL_TOL = 1e-5
READING_KEYS = ("causal", "no_peek", "spread", "onset", "relate")
STEP_KEYS = READING_KEYS[1:]  # the figures of single questions (causal compares pairs)
COUNT_MASS = 0.5  # count questions: hop 2 "relates" when this much of its mass is on the same-shape objects


class Answered(NamedTuple):
    """One test question after the model answered it."""

    question: soc.Question
    scene: soc.Scene
    image_id: int  # questions with the same id were asked about the same image
    prediction: str
    token_ids: list[int]  # the real tokens (no padding)
    hops: np.ndarray  # (T, K, R) every hop's region attention at every real step
    colour_step: int | None = None  # spoken questions: the first step that has heard the colour word (-1: none);
    # None: typed, found from token_ids
    heard: np.ndarray | None = None  # spoken questions with a heard head: its logits at the last step (len(HEARD),)
    scope_prob: float | None = None  # ... and with a heard-scope detector: the probability it was a task question


def step_scores(a: Answered, grid: int) -> dict[str, float]:
    """no_peek / spread / onset / relate for one question (a key is absent where it does not apply)."""
    s = colour_step(a.token_ids) if a.colour_step is None else a.colour_step
    if s < 0:
        return {}
    named = a.scene.find(a.question.colour)
    named_mask = soc.region_masks([named], grid)  # (R,)
    hop1 = a.hops[:, 0]  # (T, R)
    out: dict[str, float] = {"onset": float(named_mask[int(hop1[s].argmax())])}
    if s > 0:
        others = np.stack([soc.region_masks([o], grid) for o in a.scene.objects if o is not named]).astype(np.float64)  # (O, R)
        before = hop1[:s].astype(np.float64)  # (s, R)
        named_mass = before @ named_mask  # (s,)
        other_mass = (before @ others.T).mean(1)  # (s,) mean mass per other object
        out["no_peek"] = float((named_mass - other_mass).mean())
        early = a.hops[:s].astype(np.float64)  # (s, K, R)
        out["spread"] = float((-(early * np.log(np.clip(early, 1e-12, None))).sum(-1) / np.log(early.shape[-1])).mean())
    targets = hop2_objects(a.scene, a.question)
    if targets and a.hops.shape[1] > 1:
        hop2 = a.hops[s, 1]  # (R,)
        target_mask = soc.region_masks(targets, grid)
        if a.question.subtype == "count":
            out["relate"] = float(hop2 @ target_mask >= COUNT_MASS)
        else:
            out["relate"] = float(target_mask[int(hop2.argmax())])
    return out


def causal_pairs(answered: list[Answered]) -> tuple[int, int]:
    """(pairs whose attention agrees at the shared steps, pairs with a shared prefix) among one image's questions."""
    same, total = 0, 0
    for i, a in enumerate(answered):
        for b in answered[i + 1 :]:
            if a.token_ids == b.token_ids:
                continue
            shared = next((t for t, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), min(len(a.token_ids), len(b.token_ids)))
            if shared < 2:  # only [CLS] in common
                continue
            total += 1
            same += bool(np.abs(a.hops[:shared] - b.hops[:shared]).max() <= CAUSAL_TOL)
    return same, total


def reading_metrics(answered: list[Answered], grid: int) -> dict:
    """The reading figures overall and per question subtype (None where nothing applies)."""
    by_image: dict[int, list[Answered]] = defaultdict(list)
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))  # subtype -> key -> values
    for a in answered:
        by_image[a.image_id].append(a)
        for key, value in step_scores(a, grid).items():
            scores[a.question.subtype][key].append(value)
    pairs = [causal_pairs(group) for group in by_image.values()]
    same, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def mean(values: list[float]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    out: dict = {"causal": round(same / total, 4) if total else None, "causal_pairs": total}
    for key in STEP_KEYS:
        out[key] = mean([v for per in scores.values() for v in per[key]])
    out["reading_per_subtype"] = {subtype: {key: mean(per[key]) for key in STEP_KEYS} for subtype, per in sorted(scores.items())}
    return out


# ------------------------------------------------------------------------------- one question, in the app


def colour_token_step(tokens: list[str]) -> int:
    """colour_step for token strings (a Prediction's tokens): every colour word is one WordPiece, so the same step."""
    return next((t for t, tok in enumerate(tokens) if tok in COLOUR_WORDS), -1)


def question_roles(scene: soc.Scene, text: str) -> dict[str, str]:
    """{colour: "named" | "answer"} for a free-text question about a generated scene ({} when not understood):
    the object the question names, and the object(s) its answer is read from (hop2_objects)."""
    parsed = soc.parse_question(text)
    if parsed is None:
        return {}
    subtype, colour, _ = parsed
    try:
        scene.find(colour)
    except KeyError:
        return {}
    family = "nonrelational" if subtype in soc.NONREL else "relational"
    roles = {o.colour: "answer" for o in hop2_objects(scene, soc.Question(text, "", family, subtype, colour))}
    roles[colour] = "named"  # for "count" the named object is also counted: it stays "named"
    return roles


def object_mass(hops: np.ndarray, objects: list[soc.SceneObject] | tuple[soc.SceneObject, ...], grid: int) -> np.ndarray:
    """(T, K, O): each hop's attention mass on each object's regions at every step (the one region rule)."""
    masks = np.stack([soc.region_masks([o], grid) for o in objects]).astype(np.float64)  # (O, R)
    return np.asarray(hops, dtype=np.float64) @ masks.T


def top_regions(hops: np.ndarray, n: int = 4) -> list[int]:
    """The n regions with the largest weight at any step and hop (for images without known objects)."""
    peak = np.asarray(hops, dtype=np.float64).max(axis=(0, 1))  # (R,)
    return [int(r) for r in np.argsort(-peak, kind="stable")[:n]]
