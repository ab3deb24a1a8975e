"""The shipped real-image matching checkpoint on scikit-image's sample photos: it must make sense."""

import pytest

from mmdemo.checkpoint import DEFAULT_PHOTOS
from mmdemo.inference import Predictor
from mmdemo.photos import gallery
from mmdemo.tasks.matching.photo_eval import PHOTO_CASES

PHOTO_CHECKPOINT = DEFAULT_PHOTOS

def known_miss(*case: str, reason: str):
    """A case the shipped model gets wrong (README says so); strict: the test fails once it gets it right."""
    return pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason=reason))


KNOWN_MISSES = {  # (photo, sentence) -> why the shipped model gets it wrong (README says so)
    ("chelsea", "a red car"): "P(match) 0.71; the plain-attention model (attention-plain) gets it right",
    ("rocket", "a rocket"): "P(match) 0.05: ImageNet sees a drilling platform; the clip art has 1 rocket",
    ("stereo_motorcycle", "a motorcycle"): "P(match) 0.15 although ImageNet sees a moped; 2 motorcycles in the clip art",
}
CASES = [known_miss(*c, reason=KNOWN_MISSES[c[:2]]) if c[:2] in KNOWN_MISSES else c for c in PHOTO_CASES]


@pytest.fixture(scope="module")
def matcher() -> Predictor:
    return Predictor.load(PHOTO_CHECKPOINT, device="cpu")


@pytest.mark.parametrize(("name", "sentence", "expected"), CASES)
def test_photo_cases(matcher, name, sentence, expected):
    photo = next(p for p in gallery() if p.name == name)
    pred = matcher.predict(photo.pixels, sentence)
    assert pred.answer == expected, f"{name} + {sentence!r}: P(match) = {pred.probs['match']:.3f}"


def test_photo_prediction_contract(matcher):
    photo = gallery()[0]
    pred = matcher.predict(photo.pixels, "a cat on a blanket")
    assert set(pred.probs) == {"match", "mismatch"} and pred.grid == [7, 7]
    assert len(pred.region_attention) == len(pred.tokens) and all(abs(sum(row) - 1) < 1e-4 for row in pred.region_attention)
    assert pred.tokens[0] == "[CLS]" and "cat" in pred.tokens


def test_the_app_offers_the_shipped_photo_model_first():
    from mmdemo.registry import Registry

    names = [n for _, n in Registry().choices("match")]
    assert names[0] == "photos/match" and {"photos/sum", "photos/concat"} <= set(names)


def test_photo_cases_metric_agrees_with_the_predictor(matcher):
    from mmdemo.tasks.matching.photo_eval import photo_cases

    assert photo_cases(matcher.model) == {"photo_cases_right": len(PHOTO_CASES) - len(KNOWN_MISSES), "photo_cases": len(PHOTO_CASES)}
