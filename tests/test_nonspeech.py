"""The non-speech bank (mmdemo/tasks/sort_of_clevr/nonspeech.py) and the gate chosen on it: deterministic,
val and test apart, every kind refused, the fitting rule as stated, the CLI end to end.

Measured on the full banks (fit / check, 50 clips a kind, 2,000 questions): every non-speech kind is refused;
clean eSpeak questions are refused at 1.0% (val, training voices) and 2.2-2.3% (test, held-out voices; eSpeak's
pitch jitter moves a few clips between runs), most of them whispered ("whisper", "whisperf" variants), which Silero VAD does not call speech."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mmdemo import gate
from mmdemo.tasks.sort_of_clevr import nonspeech, speech

needs_espeak = pytest.mark.skipif(not speech.available()[0], reason=f"no synthesizer: {speech.available()[1]}")


def _digest(x: np.ndarray) -> str:
    return hashlib.sha1(x.tobytes()).hexdigest()


def test_bank_is_deterministic_and_well_formed() -> None:
    first, again = nonspeech.bank("test", 2), nonspeech.bank("test", 2)
    assert [k for k, _ in first] == [k for k in nonspeech.KINDS for _ in range(2)]
    assert [_digest(x) for _, x in first] == [_digest(x) for _, x in again]
    for kind, x in first:
        assert x.dtype == np.float32 and x.ndim == 1 and 0.5 <= len(x) / nonspeech.SAMPLE_RATE <= 6.0, kind
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0, kind
    assert nonspeech.sound("test", "tone", 1).tobytes() == first[1][1].tobytes()  # one clip alone is the same clip
    assert not nonspeech.sound("val", "silence", 0).any()  # digital silence is exact zeros


def test_val_and_test_are_disjoint() -> None:
    val = {_digest(x) for _, x in nonspeech.bank("val", 4)}
    test = {_digest(x) for _, x in nonspeech.bank("test", 4)}
    assert len(val) == len(test) == 4 * len(nonspeech.KINDS) and not val & test
    with pytest.raises(ValueError):
        nonspeech.sound("train", "tone", 0)
    with pytest.raises(ValueError):
        nonspeech.sound("val", "speech", 0)


def test_every_kind_is_refused_on_test_clips() -> None:
    cfg = gate.load_config()
    for kind, x in nonspeech.bank("test", 3):
        heard = gate.listen(x, cfg)
        assert not heard.question, (kind, heard)


def test_the_bank_has_what_the_kinds_say() -> None:
    """440 Hz is among the tones; levels span -40 to -3 dBFS; some clips are clipped at full scale."""
    tone = nonspeech.sound("test", "tone", 0)
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * nonspeech.SAMPLE_RATE / len(tone) - 440) < 2
    clips = [x for kind, x in nonspeech.bank("val", 10) if kind != "silence"]
    peaks = 20 * np.log10([np.abs(x).max() for x in clips])
    assert peaks.min() < -30 and any(np.mean(np.abs(x) >= 0.999) > 0.001 for x in clips)


@needs_espeak
def test_questions_come_from_every_synthesizer_in_the_splits_voices() -> None:
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr import spoken

    clips = nonspeech.questions("test", 6, "clean")
    plan = spoken.plan_questions(soc.test_split()[:1], "test", condition="clean")[:6]
    assert len(clips) == 6 and [u.synth for u in plan] == list(spoken.SYNTHS) * 2
    assert all(u.voice in spoken.voices("test", u.synth) for u in plan) and all(0.5 < len(x) / 16000 < 6 for x in clips)


@needs_espeak
def test_fit_follows_its_rule() -> None:
    """With 10 questions no refusal is allowed (1% of 10 rounds down): min_speech_s is the least speech heard
    in any of them, so every question passes, and the little non-speech bank is all refused."""
    speech_clips = nonspeech.questions("val", 10, "clean")
    cfg, report = nonspeech.fit_report(speech_clips, nonspeech.bank("val", 1))
    least = min(gate.listen(x, gate.GateConfig(cfg.speech_threshold, 0.0)).speech_s for x in speech_clips)
    assert cfg.speech_threshold == 0.5 and cfg.min_speech_s == pytest.approx(least)
    assert report["speech_refused"]["refused"] == 0 and report["nonspeech_refused"]["overall"]["rate"] == 1.0
    assert nonspeech.fit(speech_clips, nonspeech.bank("val", 1)) == cfg


@needs_espeak
def test_cli_fits_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "gate.json"
    assert nonspeech.main(["fit", "--per-kind", "1", "--speech-count", "6", "--config", str(path), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["written"] == str(path) and gate.GateConfig.from_json(path).min_speech_s == fitted["config"]["min_speech_s"]
    assert nonspeech.main(["check", "--per-kind", "1", "--speech-count", "6", "--config", str(path), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert set(checked["nonspeech_refused"]["per_kind"]) == set(nonspeech.KINDS) and checked["speech_refused"]["clean"]["n"] == 6
    assert nonspeech.main(["check", "--per-kind", "1", "--speech-count", "2", "--config", str(path)]) == 0
    assert "non-speech   refused" in capsys.readouterr().out
