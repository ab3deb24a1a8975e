"""Speech that is not one of the task's questions (mmdemo/tasks/sort_of_clevr/offtask.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import offtask

ROOT = Path(__file__).resolve().parent.parent
SPOKEN = ROOT / "checkpoints" / "sort-of-clevr" / "spoken"


def test_no_sentence_of_the_bank_is_a_task_question() -> None:
    texts = [text for _, text in offtask.SENTENCES]
    assert len(texts) == len(set(texts)) == 50
    assert [t for t in texts if soc.parse_question(t) is not None] == []


def test_outcome_follows_the_prediction() -> None:
    sure, unsure = SimpleNamespace(sure=True), SimpleNamespace(sure=False)
    assert offtask.outcome(SimpleNamespace(answered=False, hearing=unsure)) == "not heard"
    assert offtask.outcome(SimpleNamespace(answered=True, hearing=unsure)) == "asked again"
    assert offtask.outcome(SimpleNamespace(answered=True, hearing=sure)) == "answered"


def test_the_tally_counts_what_the_predictor_does() -> None:
    """Two sentences, every family: the tally's counts are the Predictor's own outcomes, clip by clip."""
    from mmdemo.inference import Predictor
    from mmdemo.tasks.sort_of_clevr.synthesizers import available

    if not available()[0]:
        pytest.skip(available()[1])
    two = (("other questions", "what is the weather like today"), ("chat", "hello"))
    voiced = list(offtask.clips("clean", two))
    assert [(g, t, u.synth) for g, t, u, _, _ in voiced] == [(g, t, s) for s in ("espeak", "festival", "piper") for g, t in two]
    predictor = Predictor.load(SPOKEN, device="cpu")
    outcomes = [offtask.outcome(predictor.predict(image, (16000, x))) for _, _, _, image, x in voiced]
    report = offtask.tally(predictor, voiced)
    assert report["overall"]["clips"] == 6 and {s: r["clips"] for s, r in report["by_synth"].items()} == {"espeak": 2, "festival": 2, "piper": 2}
    for key in ("not heard", "asked again", "answered"):
        assert report["overall"][key.replace(" ", "_")] == pytest.approx(outcomes.count(key) / 6, abs=1e-4)
    assert [a["text"] for a in report["answered"]] == [t for (_, t, _, _, _), o in zip(voiced, outcomes) if o == "answered"]


def test_the_shipped_record() -> None:
    record = json.loads((SPOKEN / "metrics.json").read_text())["offtask"]
    n = len(offtask.SENTENCES)
    assert record["sentences"] == n and record["overall"]["clips"] == 3 * n
    assert sum(record["overall"][k] for k in ("not_heard", "asked_again", "answered")) == pytest.approx(1.0, abs=1e-3)
    assert len(record["answered"]) == round(record["overall"]["answered"] * 3 * n)
    assert set(record["by_group"]) == set(offtask.GROUPS) and record["command"].startswith("python -m mmdemo.tasks.sort_of_clevr.offtask check")


@pytest.mark.parametrize("folder", ["checkpoints/sort-of-clevr/default", "no/such/folder"])
def test_bad_checkpoint_is_one_line_and_exit_2(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert offtask.main(["check", "--checkpoint", str(ROOT / folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_bad_condition_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert offtask.main(["check", "--checkpoint", str(SPOKEN), "--condition", "underwater"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown condition")
