"""Was it one of the six kinds of question at all (mmdemo/tasks/sort_of_clevr/heard_scope.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdemo.audio import decode, log_mel
from mmdemo.demo.ask import answer_markdown
from mmdemo.inference import Predictor
from mmdemo.processing import images_to_tensor
from mmdemo.tasks.sort_of_clevr import heard_scope, offtask
from mmdemo.tasks.sort_of_clevr.hearing import Thresholds, hearing

ROOT = Path(__file__).resolve().parent.parent
SPOKEN = ROOT / "checkpoints" / "sort-of-clevr" / "spoken"
EXAMPLES = ROOT / "examples" / "spoken"


def test_the_summary_reads_only_the_real_steps() -> None:
    """Last step, mean and maximum over the real steps of the states; the heard logits' last step and mean:
    padding after a recording's end changes nothing."""
    torch.manual_seed(0)
    states, heard = torch.randn(2, 6, 4), torch.randn(2, 6, 3)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    out = heard_scope.summarise(states, heard, mask)
    assert out.shape == (2, 3 * 4 + 2 * 3)
    s, h = states[1, :3], heard[1, :3]
    expected = torch.cat([s[-1], s.mean(0), s.amax(0), h[-1], h.mean(0)])
    torch.testing.assert_close(out[1], expected)
    padded = states.clone()
    padded[1, 3:] = 100.0  # what lies after the end is never read
    torch.testing.assert_close(heard_scope.summarise(padded, heard, mask), out)


def test_the_readout_is_the_detector_on_what_the_model_heard(spoken_predictor: Predictor, spoken_scene: np.ndarray) -> None:
    """Prediction.hearing.scope_prob equals the shipped detector applied by hand to the model's states."""
    assert spoken_predictor.heard_scope is not None and spoken_predictor.thresholds.scope is not None
    path = EXAMPLES / "green-closest.ogg"
    pred = spoken_predictor.predict(spoken_scene, str(path))
    cfg = spoken_predictor.cfg
    frames = log_mel(decode(str(path), cfg.max_audio_seconds, cfg.sample_rate).samples, cfg.sample_rate, cfg.n_mels, cfg.hop_ms)
    with torch.inference_mode():
        out = spoken_predictor.model(images_to_tensor(spoken_predictor.prepare(spoken_scene)[None]), frames[None], torch.ones(1, len(frames), dtype=torch.bool))
        p = float(heard_scope.load_scope(SPOKEN).probability(heard_scope.summarise(out.states, out.heard, out.step_mask))[0])
    assert pred.hearing.scope_prob == pytest.approx(p, abs=1e-4)
    assert pred.hearing.sure and p >= spoken_predictor.thresholds.scope  # a task question in a held-out voice
    assert "one of the six kinds of question" in answer_markdown(pred, cfg)


@pytest.mark.parametrize("name", ["red-shape", "blue-left", "green-closest", "orange-count", "gray-top", "yellow-furthest"])
def test_the_example_recordings_are_task_questions(spoken_predictor: Predictor, spoken_scene: np.ndarray, name: str) -> None:
    pred = spoken_predictor.predict(spoken_scene, str(EXAMPLES / f"{name}.ogg"))
    assert pred.hearing.doubt != "scope", pred.hearing


def test_speech_that_is_not_a_question_is_asked_again(spoken_predictor: Predictor, spoken_scene: np.ndarray) -> None:
    """Sentences naming a colour, in the app's own eSpeak voice (the kind of speech the heard head alone answered
    as "what shape is it" at 91-100%), get the scope notice; a task question in the same voice does not."""
    from mmdemo.tasks.sort_of_clevr.speech import available, synthesize

    if not available()[0]:
        pytest.skip(available()[1])
    for text, in_scope in (("I painted the whole kitchen red last summer", False), ("my sister has a blue bicycle", False),
                           ("is the red object bigger than the blue one", False), ("what shape is the green object", True)):
        s = synthesize(text)
        pred = spoken_predictor.predict(spoken_scene, (s.sample_rate, s.samples))
        assert (pred.hearing.doubt != "scope") == in_scope, (text, pred.hearing)
        if not in_scope:
            assert "did not sound like one of the six kinds" in pred.notice and "Please ask again" in answer_markdown(pred, spoken_predictor.cfg)


def test_the_scope_is_checked_first() -> None:
    last = np.zeros(14, np.float32)
    last[0] = last[6] = 5.0
    assert hearing(True, 2.0, last, Thresholds(0.99, 0.99, 0.5), scope_prob=0.2).doubt == "scope"
    assert hearing(True, 2.0, last, Thresholds(0.99, 0.99, 0.5), scope_prob=0.8).doubt == "colour"
    assert hearing(True, 2.0, last, Thresholds(0.1, 0.1, 0.5), scope_prob=0.8).sure
    assert hearing(True, 2.0, last, Thresholds(0.1, 0.1, 0.5)).sure  # a checkpoint without a detector
    assert hearing(False, 2.0, last, Thresholds(0.1, 0.1, 0.5), scope_prob=0.0).doubt == ""  # no question heard at all


def test_the_banks_are_apart_from_the_check_and_from_each_other() -> None:
    """No training or validation sentence is one of offtask.SENTENCES (which only measure), and train and val share
    none. (They are the typed scope detector's out-of-scope banks, so none asks one of the six kinds; the keyword parser
    of data.parse_question would still take "what colour is the object closest to the red object" for one.)"""
    train, val = heard_scope.bank("offtask-train"), heard_scope.bank("offtask-val")
    check = {heard_scope._normal(t) for _, t in offtask.SENTENCES}
    train_texts, val_texts = {heard_scope._normal(t) for _, t in train}, {heard_scope._normal(t) for _, t in val}
    assert not train_texts & check and not val_texts & check and not train_texts & val_texts
    assert all(t.isascii() for _, t in train + val) and len(train) > 500 and len(val) > 150


def test_the_plan_is_deterministic_in_training_voices() -> None:
    from mmdemo.tasks.sort_of_clevr import spoken

    a, b = heard_scope.plan("offtask-val", 30), heard_scope.plan("offtask-val", 30)
    assert a == b and len({u.template for u in a}) == len({c for c, _ in heard_scope.bank("offtask-val")})
    train_voices = {synth: set(spoken.voices("train", synth)) for synth in spoken.SYNTHS}
    assert all(u.voice in train_voices[u.synth] for u in a)


def test_the_shipped_detector_and_its_choice() -> None:
    report = json.loads((SPOKEN / heard_scope.REPORT).read_text())
    chosen = report["chosen_on"]
    kept = f"hidden {report['hidden']}, weight decay {report['weight_decay']}"
    assert chosen["split"].startswith("val:") and len(report["tried"]) == len(heard_scope.CANDIDATES)
    caught = {k: v["offtask_caught"] for k, v in report["tried"].items()}
    assert caught[kept] == max(caught.values()) == chosen["offtask_caught"]  # the detector that catches most on val
    assert chosen["task_asked_again_valwarp"] <= heard_scope.FLAGGED + 0.002  # the threshold on valwarp, never on held-out voices
    assert Thresholds.of(SPOKEN).scope == report["threshold"]
    scope = heard_scope.load_scope(SPOKEN)
    assert scope is not None and scope.mean.shape == (3 * 64 + 2 * 14,)
    assert heard_scope.load_scope(ROOT / "checkpoints" / "sort-of-clevr" / "default") is None


@pytest.mark.parametrize("folder", ["checkpoints/sort-of-clevr/default", "no/such/folder"])
def test_bad_checkpoint_is_one_line_and_exit_2(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert heard_scope.main(["fit", "--checkpoint", str(ROOT / folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_the_cli_asks_again_for_speech_that_is_not_a_question(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import soundfile as sf

    from mmdemo.__main__ import main
    from mmdemo.tasks.sort_of_clevr.speech import available, synthesize

    if not available()[0]:
        pytest.skip(available()[1])
    s = synthesize("my sister has a blue bicycle")
    sf.write(tmp_path / "offtask.wav", s.samples, s.sample_rate)
    assert main(["predict", "--checkpoint", str(SPOKEN), "--image", str(ROOT / "examples" / "scene.png"), "--audio", str(tmp_path / "offtask.wav")]) in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("please ask again: That did not sound like one of the six kinds") and ", a task question (0.0" in out
