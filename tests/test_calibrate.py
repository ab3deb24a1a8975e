"""The calibrated photo matcher (mmdemo.tasks.matching.calibrate): its metrics and the shipped calibration."""

import numpy as np
import pytest

from mmdemo.tasks.matching.calibrate import CALIBRATION, PhotoMatcher, expected_calibration_error, fit_logistic, sigmoid


def test_ece_known_cases():
    y = np.array([1, 0, 1, 0])
    assert expected_calibration_error(y, np.full(4, 0.5)) == pytest.approx(0.0)  # right on average in its one bin
    assert expected_calibration_error(y, np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.0)
    # two bins: p 0.9 with labels (1, 0) -> |0.5 - 0.9|; p 0.15 with labels (0, 0) -> |0 - 0.15|; equal shares
    assert expected_calibration_error(y[[0, 1, 3, 3]], np.array([0.9, 0.9, 0.15, 0.15])) == pytest.approx((0.4 + 0.15) / 2)
    assert expected_calibration_error(np.array([1]), np.array([1.0])) == pytest.approx(0.0)  # p = 1 falls in the last bin


def test_fit_logistic_recovers_a_known_slope():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 1))
    y = (rng.random(4000) < sigmoid(2.0 * x[:, 0] - 0.5)).astype(float)
    w, b = fit_logistic(x, y, l2=0.0)
    assert w[0] == pytest.approx(2.0, abs=0.25) and b == pytest.approx(-0.5, abs=0.15)


@pytest.fixture(scope="module")
def matcher() -> PhotoMatcher:
    return PhotoMatcher.load(CALIBRATION)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from mmdemo.photos import gallery

    return {p.name: p.pixels for p in gallery()}


def test_shipped_calibration_is_complete():
    import json

    params = json.loads(CALIBRATION.read_text())
    assert len(params["features"]) == len(params["weights"]) and np.isfinite(params["bias"])
    assert {"validation_cross_fitted", "test", "fit_on"} <= set(params)


def test_probability_in_unit_interval(matcher, photos):
    p = matcher.probability(photos["chelsea"], "a cat on a blanket")
    assert isinstance(p, float) and 0.0 <= p <= 1.0


def test_ranking_two_gallery_photos(matcher, photos):
    cat, coffee = photos["chelsea"], photos["coffee"]
    assert matcher.probability(cat, "a cat") > matcher.probability(coffee, "a cat")
    assert matcher.probability(coffee, "a cup of coffee") > matcher.probability(cat, "a cup of coffee")
    assert matcher.probability(cat, "a cat") > 0.5 > matcher.probability(cat, "a cup of coffee")
