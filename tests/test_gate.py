"""The voice-activity gate (mmdemo/gate.py): spoken questions pass, odd input never raises, empty and silent
input is refused without the model, the model loads once, lazily, and leaves torch's thread count alone."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mmdemo import gate
from mmdemo.tasks.sort_of_clevr import speech

ROOT = Path(__file__).resolve().parent.parent
needs_espeak = pytest.mark.skipif(not speech.available()[0], reason=f"no synthesizer: {speech.available()[1]}")
QUESTIONS = (  # canonical questions in held-out voices (none of them whispered: see test_nonspeech's docstring)
    ("What shape is the red object?", "en-us-nyc"),
    ("Is the green object on the left side of the image?", "en-gb-x-gbcwmd+f3"),
    ("What shape is the object closest to the blue object?", "en-gb-scotland+m5"),
    ("How many objects have the same shape as the yellow object?", "en-us+Annie"),
)


@pytest.fixture(scope="module")
def questions() -> list[np.ndarray]:
    if not speech.available()[0]:
        pytest.skip(f"no synthesizer: {speech.available()[1]}")
    return [speech.synthesize(text, voice).samples for text, voice in QUESTIONS]


def test_shipped_config_is_the_fitted_one() -> None:
    saved = json.loads(gate.DEFAULT_PATH.read_text())
    cfg = gate.load_config()
    assert cfg == gate.GateConfig.from_dict(saved) == gate.GateConfig()  # the dataclass defaults match gate.json
    assert saved["chosen"]["speech_refused"]["rate"] <= 0.01 and saved["chosen"]["nonspeech_refused"]["overall"]["rate"] >= 0.95
    assert cfg.min_chunks() == round(cfg.min_speech_s / gate.CHUNK_S)


def test_config_round_trips(tmp_path: Path) -> None:
    cfg = gate.GateConfig(0.6, 0.5)
    path = cfg.to_json(tmp_path / "gate.json", chosen={"why": "a test"})
    assert gate.GateConfig.from_json(path) == cfg and json.loads(path.read_text())["chosen"] == {"why": "a test"}
    with pytest.raises(ValueError, match="min_speech_s"):
        gate.GateConfig.from_dict({"speech_threshold": 0.5})


@needs_espeak
def test_spoken_questions_pass(questions: list[np.ndarray]) -> None:
    for (text, voice), x in zip(QUESTIONS, questions):
        heard = gate.listen(x)
        assert heard.question, (text, voice, heard)
        assert heard.speech_s >= gate.load_config().min_speech_s and 0 < heard.speech_fraction <= 1 and heard.max_prob > 0.9


@needs_espeak
def test_level_does_not_matter(questions: list[np.ndarray]) -> None:
    """A quiet (-30 dB) or integer-scaled recording is heard as the same question: the gate evens the level."""
    x = questions[0]
    base = gate.listen(x)
    for scaled in (x * 10 ** (-30 / 20), (x * 32767).astype(np.int16), x * 32767.0):
        heard = gate.listen(scaled)
        assert heard.question and abs(heard.speech_s - base.speech_s) <= 0.1, heard


def test_empty_and_zeros_are_refused_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model():
        raise AssertionError("the model must not run on empty or all-zero input")

    monkeypatch.setattr(gate, "_model", no_model)
    for x in (np.zeros(0, np.float32), np.zeros(48000, np.float32), np.full(1000, np.nan, np.float32), [], np.zeros((0, 2))):
        assert gate.listen(x) == gate.Heard(0.0, 0.0, 0.0, False)


def test_odd_input_never_raises() -> None:
    rng = np.random.default_rng(0)
    odd = [
        np.array([np.nan, np.inf, -np.inf, 0.5] * 4000, np.float32),  # NaN/inf count as 0
        rng.standard_normal(10).astype(np.float32),  # shorter than one 32 ms chunk
        np.array([0.3], np.float32), np.float32(0.2), 0.7,  # one sample, a scalar
        rng.standard_normal((8000, 2)).astype(np.float32), rng.standard_normal((2, 8000)),  # stereo either way round
        (rng.standard_normal(16000) * 1e6).astype(np.float64),  # far beyond full scale
        rng.integers(-32768, 32767, 16000, dtype=np.int16), rng.integers(0, 255, 16000, dtype=np.uint8),
        np.ones(16000, bool), np.array(["not", "sound"]), np.ones(4, complex),
        rng.standard_normal((2, 2, 4000)),
    ]
    for x in odd:
        heard = gate.listen(x)
        assert isinstance(heard.question, bool) and np.isfinite([heard.speech_s, heard.speech_fraction, heard.max_prob]).all()
        assert not heard.question  # none of them is a question
    assert len(gate.speech_probs(np.ones(10, np.float32) * 0.1)) == 1


def test_decide_counts_chunks() -> None:
    probs = np.array([0.9] * 28 + [0.1] * 10, np.float32)  # 28 chunks of speech = 0.896 s
    assert gate.decide(probs, gate.GateConfig(0.5, 0.896)) == gate.Heard(0.896, round(28 / 38, 4), 0.9, True)
    assert not gate.decide(probs, gate.GateConfig(0.5, 0.9)).question
    assert not gate.decide(probs, gate.GateConfig(0.95, 0.0)).question  # no speech chunk is never a question


def test_concurrent_calls_agree() -> None:
    """The ONNX wrapper keeps state between chunks: calls from many threads must not mix it up."""
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(int(16000 * s)).astype(np.float32) * 0.1 for s in (0.5, 1.0, 2.0, 3.0)] * 3
    alone = [gate.speech_probs(x) for x in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(gate.speech_probs, clips))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_import_is_light_and_loading_keeps_torch_threads() -> None:
    """Importing mmdemo.gate loads neither torch nor onnxruntime nor silero_vad; the first listen loads them,
    and silero_vad's own torch.set_num_threads(1) at import is undone."""
    code = (
        "import sys, numpy as np\n"
        "import mmdemo.gate as g\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'silero_vad') if m in sys.modules)\n"
        "import torch; torch.set_num_threads(2)\n"
        "g.listen(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)\n"
        "print(heavy, torch.get_num_threads(), 'silero_vad' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[-2] == "[] 2 True", r.stdout
