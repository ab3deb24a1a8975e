"""The question-scope detector (mmdemo/tasks/sort_of_clevr/scope.py) and the in_domain field it feeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmdemo.inference import IMAGE_NOTICE, Predictor
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import scope, scope_data
from mmdemo.text import tokenize


@pytest.fixture(scope="module")
def det() -> scope.ScopeDetector:
    return scope.detector()


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(device="cpu")


@pytest.fixture(scope="module")
def scene_pixels() -> np.ndarray:
    return soc.render(soc.random_scene(np.random.default_rng(7)))


def test_threshold_decides_on_both_sides(det: scope.ScopeDetector) -> None:
    question = "What shape is the red object?"
    score = float(det.scores([question])[0])
    assert det.check(question).in_domain and score >= det.threshold
    above = scope.ScopeDetector(det.net, min(1.0, score + 1e-4))  # the same score, a threshold just above it
    below = scope.ScopeDetector(det.net, score - 1e-4)
    assert not above.check(question).in_domain and above.check(question).notice == scope.OUT_OF_SCOPE
    assert below.check(question).in_domain and below.check(question).notice == ""


@pytest.mark.parametrize("question", ["hello", "What colour is the biggest object?", "Is the red object made of metal?", "asdf qwer"])
def test_out_of_scope_questions_are_flagged(det: scope.ScopeDetector, question: str) -> None:
    s = det.check(question)
    assert not s.in_domain and s.readable and s.score < det.threshold and s.notice == scope.OUT_OF_SCOPE


@pytest.mark.parametrize("question", ["红色物体是什么形状？", "Какой формы красный объект?", "🙂🙂🙂"])
def test_unreadable_questions_say_the_model_reads_english(det: scope.ScopeDetector, question: str) -> None:
    s = det.check(question)
    assert not s.in_domain and not s.readable and s.score == 0.0 and "English" in s.notice


@pytest.mark.parametrize("kind,example", scope.KINDS)
def test_every_listed_example_is_in_scope(det: scope.ScopeDetector, kind: str, example: str) -> None:
    assert det.check(example).in_domain, kind
    assert soc.parse_question(example) is not None  # the list shows questions the generator can answer


def test_shipped_report_is_what_the_shipped_detector_measures(det: scope.ScopeDetector) -> None:
    """The figures in scope.json (quoted in the docs) are recomputed here from the shipped weights and banks."""
    report = json.loads((scope.SCOPE_DIR / scope.REPORT).read_text())
    assert report["threshold"] == pytest.approx(det.threshold)
    test = scope.measure(det, scope.heldout_questions(), scope.expand(scope_data.TEST_OUT))
    assert test == report["test"]
    assert test["out_of_scope_flagged_all"] >= 0.95 and test["in_scope_flagged_all"] <= 0.02
    val = scope.measure(det, scope.expand_val_in(), scope.expand(scope_data.VAL_OUT))
    assert val == report["validation"] and val["in_scope_flagged_all"] <= scope.VAL_MAX_FLAGGED


def test_banks_do_not_overlap() -> None:
    def sentences(bank: dict) -> set[str]:  # compared as training sees them: any case, any end punctuation
        return {t.lower().rstrip("?.! ") for rows in bank.values() for t in rows}

    banks = [sentences(scope_data.TRAIN_OUT), sentences(scope_data.VAL_OUT), sentences(scope_data.TEST_OUT), sentences(scope_data.FRESH_OUT)]
    for i, a in enumerate(banks):
        for b in banks[i + 1 :]:
            assert not a & b, a & b
    train = {t.lower().rstrip("?.! ") for rows in soc.TRAIN_WORDINGS.values() for t, _ in rows}
    held = {t.lower().rstrip("?.! ") for rows in soc.HELDOUT_WORDINGS.values() for t, _ in rows}
    assert not sentences(scope_data.VAL_WORDINGS) & (train | held)


def test_prediction_carries_the_verdict(predictor: Predictor, scene_pixels: np.ndarray) -> None:
    ok = predictor.predict(scene_pixels, "What shape is the red object?")
    assert ok.in_domain and ok.notice == "" and ok.question_scope is not None and ok.question_scope >= scope.detector().threshold
    hello = predictor.predict(scene_pixels, "hello")
    assert not hello.in_domain and hello.notice == scope.OUT_OF_SCOPE and hello.answer in predictor.cfg.labels
    chinese = predictor.predict(scene_pixels, "红色物体是什么形状？")
    assert not chinese.in_domain and chinese.question_scope == 0.0 and "English" in chinese.notice
    d = hello.to_dict()
    assert d["in_domain"] is False and d["notice"] == scope.OUT_OF_SCOPE


def test_image_side_is_behind_the_api(predictor: Predictor) -> None:
    photo = np.random.default_rng(0).integers(0, 256, (75, 75, 3), dtype=np.uint8)
    pred = predictor.predict(photo, "What shape is the red object?")
    assert not pred.in_domain and pred.notice == IMAGE_NOTICE
    both = predictor.predict(photo, "hello")
    assert not both.in_domain and IMAGE_NOTICE in both.notice and scope.OUT_OF_SCOPE in both.notice


def test_answers_are_unchanged_by_the_verdict(predictor: Predictor, scene_pixels: np.ndarray) -> None:
    """The detector only adds fields: the model's answer and probabilities are what they were."""
    pred = predictor.predict(scene_pixels, "hello")
    ids, _ = tokenize(["hello"], predictor.cfg.max_tokens)
    tokens, mask = pad_token_ids(ids)
    with torch.inference_mode():
        out = predictor.model(images_to_tensor(scene_pixels[None]), tokens, mask)
    probs = out.logits[0].softmax(-1).numpy()
    assert pred.answer == predictor.cfg.labels[int(probs.argmax())]
    assert pred.probs[pred.answer] == pytest.approx(float(probs.max()))
