"""The shipped default checkpoint: it loads, it still scores what its metrics.json says on a freshly
generated test split, its attention lands on the named object, and wording does not change answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmdemo.checkpoint import DEFAULT, METRICS, load_checkpoint
from mmdemo.model import pick_device
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.evaluate import evaluate_model, predict_samples

pytestmark = pytest.mark.skipif(not (DEFAULT / "model.safetensors").is_file(), reason="no default checkpoint shipped")


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(DEFAULT, "cpu")[0]


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads((DEFAULT / METRICS).read_text())


def test_fresh_split_matches_recorded_accuracy(model, recorded: dict) -> None:
    fresh = soc.generate("test", 100, seed=20261129)  # not the split metrics.json was measured on
    metrics = evaluate_model(model, pick_device("cpu"), fresh)
    for key in ("nonrelational", "relational"):
        assert metrics[key] >= recorded[key] - 0.05, (key, metrics[key], recorded[key])
    # Better than answering each question type with its most common answer (it uses the image).
    answers: dict[str, list[str]] = {}
    for s in fresh:
        for q in s.questions:
            answers.setdefault(q.subtype, []).append(q.answer)
    prior = sum(max(a.count(x) for x in set(a)) for a in answers.values()) / sum(len(a) for a in answers.values())
    assert metrics["overall"] > prior + 0.1, (metrics["overall"], prior)
    if recorded.get("grounding") is not None:
        assert metrics["grounding"] >= recorded["grounding"] - 0.08


def _answers(model, samples: list[soc.Sample]) -> list[str]:
    return [a.prediction for a in predict_samples(model, samples, pick_device("cpu"))]


def _reworded(samples: list[soc.Sample], transform) -> list[soc.Sample]:
    out = []
    for s in samples:
        qs = [soc.Question(transform(q, i), q.answer, q.family, q.subtype, q.colour) for i, q in enumerate(s.questions)]
        out.append(soc.Sample(s.index, s.scene, s.image, qs))
    return out


def test_case_punctuation_and_spaces_do_not_change_answers(model) -> None:
    samples = soc.generate("test", 40, seed=77)
    base = _answers(model, samples)
    variants = {
        "upper": lambda q, i: q.text.upper(),
        "no punctuation": lambda q, i: q.text.rstrip("?"),
        "spaces": lambda q, i: "  " + "   ".join(q.text.split()) + "  ",
        "exclaim": lambda q, i: q.text.rstrip("?") + " ?!",
    }
    for name, transform in variants.items():
        changed = np.mean([a != b for a, b in zip(base, _answers(model, _reworded(samples, transform)))])
        assert changed <= 0.03, (name, changed)


def _heldout_agreement(model, family: str) -> float:
    """Share of questions whose held-out rewording gets the canonical question's answer (flipped yes/no
    for the rewordings that ask about the opposite side, e.g. "... sits on the right?")."""
    samples = soc.generate("test", 40, seed=78)
    base = _answers(model, samples)
    rng = np.random.default_rng(0)
    reworded = [
        soc.Sample(s.index, s.scene, s.image, [soc.make_question(s.scene, q.subtype, q.colour, rng, "heldout") for q in s.questions])
        for s in samples
    ]
    flip = {"yes": "no", "no": "yes"}
    same_truth = [q.answer == r.answer for s, t in zip(samples, reworded) for q, r in zip(s.questions, t.questions)]
    expected = [b if same else flip.get(b) for b, same in zip(base, same_truth)]
    families = [q.family for s in samples for q in s.questions]
    pairs = zip(expected, _answers(model, reworded), families)
    return float(np.mean([a == b for a, b, f in pairs if f == family]))


def test_heldout_rewordings_keep_nonrelational_answers(model) -> None:
    """Rewordings never seen in training (HELDOUT_WORDINGS) give the canonical question's answer."""
    assert _heldout_agreement(model, "nonrelational") >= 0.9


def test_heldout_rewordings_keep_relational_answers(model) -> None:
    assert _heldout_agreement(model, "relational") >= 0.9
