"""The shipped real-image matching checkpoint on scikit-image's sample photos: it must make sense."""

import pytest

from mmdemo.checkpoint import DEFAULT_PHOTOS
from mmdemo.inference import Predictor
from mmdemo.photos import EXAMPLES, gallery
from mmdemo.tasks.matching.photo_eval import PHOTO_CASES

PHOTO_CHECKPOINT = DEFAULT_PHOTOS

# The trained photo model alone (clip art) gets these wrong; the shipped matcher's calibrated answer gets all right.
RAW_MISSES = {
    ("chelsea", "a red car"): "P(match) 0.71; the plain-attention model (attention-plain) gets it right",
    ("rocket", "a rocket"): "P(match) 0.05: ImageNet sees a drilling platform; the clip art has 1 rocket",
    ("stereo_motorcycle", "a motorcycle"): "P(match) 0.15 although ImageNet sees a moped; 2 motorcycles in the clip art",
}


@pytest.fixture(scope="module")
def matcher() -> Predictor:
    return Predictor.load(PHOTO_CHECKPOINT, device="cpu")


@pytest.mark.parametrize(("name", "sentence", "expected"), PHOTO_CASES)
def test_photo_cases(matcher, name, sentence, expected):
    photo = next(p for p in gallery() if p.name == name)
    pred = matcher.predict(photo.pixels, sentence)
    assert pred.calibrated and pred.answer == expected, f"{name} + {sentence!r}: P(match) = {pred.probs['match']:.3f}"
    raw = "match" if pred.model_probs["match"] >= 0.5 else "mismatch"
    assert (raw != expected) == ((name, sentence) in RAW_MISSES), f"the clip-art model alone: P(match) {pred.model_probs['match']:.3f}"


def test_photo_prediction_contract(matcher):
    photo = gallery()[0]
    pred = matcher.predict(photo.pixels, "a cat on a blanket")
    assert set(pred.probs) == {"match", "mismatch"} and pred.grid == [7, 7]
    assert pred.calibrated and set(pred.model_probs) == {"match", "mismatch"} and pred.probs["match"] + pred.probs["mismatch"] == pytest.approx(1.0)
    assert pred.in_domain and pred.notice == ""
    assert len(pred.region_attention) == len(pred.tokens) and all(abs(sum(row) - 1) < 1e-4 for row in pred.region_attention)
    assert pred.tokens[0] == "[CLS]" and "cat" in pred.tokens


def test_the_app_offers_the_shipped_photo_model_first():
    from mmdemo.registry import Registry

    names = [n for _, n in Registry().choices("match")]
    assert names[0] == "photos/match" and {"photos/sum", "photos/concat"} <= set(names)


def test_photo_cases_metric_agrees_with_the_predictor(matcher):
    from mmdemo.tasks.matching.photo_eval import photo_cases

    assert photo_cases(matcher.model) == {"photo_cases_right": len(PHOTO_CASES) - len(RAW_MISSES), "photo_cases": len(PHOTO_CASES)}


def test_only_the_model_the_calibration_was_fitted_on_is_calibrated():
    other = Predictor.load(PHOTO_CHECKPOINT.parent / "sum", device="cpu")
    pred = other.predict(gallery()[0].pixels, "a cat")
    assert not pred.calibrated and pred.model_probs is None


def test_shipped_calibration_meets_its_bars_and_its_examples_are_current(matcher):
    """The figures in calibration.json (quoted by the app and the docs): bars on held-out photos, and the app examples
    it lists are what the shipped matcher says now."""
    import json

    from mmdemo.tasks.matching.calibrate import CALIBRATION

    params = json.loads(CALIBRATION.read_text())
    assert params["test"]["roc_auc"] >= 0.85 and params["test"]["ece"] <= 0.05
    photos = {p.name: p.pixels for p in gallery()}
    for ex in params["app_examples"]:
        p = matcher.predict(photos[ex["photo"]], ex["sentence"]).probs["match"]
        assert p == pytest.approx(ex["p_match"], abs=1e-3), ex
        assert (p >= 0.5) == (ex["expected"] == "match"), ex  # every Photos-tab example is right
    assert [(e["photo"], e["sentence"]) for e in params["app_examples"]] == [(n, t) for n, t, _ in EXAMPLES]


def test_the_app_says_when_the_clip_art_model_and_the_zero_shot_reference_disagree():
    """rocket + 'a rocket': the clip-art model alone says mismatch (ImageNet sees a drilling platform), the zero-shot
    reference leans to match; the app says so in words, under the calibrated answer."""
    from mmdemo.demo.photos import Photos
    from mmdemo.registry import Registry

    photos = Photos(Registry())
    answer = photos.match(next(p for p in gallery() if p.name == "rocket").pixels, "a rocket", None)
    head, probs, reference = answer.headline, answer.probs, answer.reference
    assert "## match" in head and "calibrated on real photos" in head and probs["match"] > 0.5
    assert "clip-art model alone says **mismatch**" in reference and "leans to **match**" in reference
    assert "**They disagree**" in reference
    cat = next(p for p in gallery() if p.name == "chelsea").pixels
    reference = photos.match(cat, "a cat", None).reference
    assert "**They disagree**" not in reference
