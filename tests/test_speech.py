"""Speech synthesis (eSpeak NG from its pip wheel), the spoken-question data and a spoken smoke training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import speech, spoken

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not speech.available()[0], reason=f"no synthesizer: {speech.available()[1]}")


def test_synthesize_gives_16k_samples_and_word_boundaries() -> None:
    text = "Is the green object on the left side of the image?"
    sample_rate, samples, words = speech.synthesize(text)
    assert sample_rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    duration = len(samples) / sample_rate
    assert 1.0 < duration < 6.0 and 0.05 < np.abs(samples).max() <= 1.0
    spoken_words = [w.text.lower() for w in words]
    assert "green" in spoken_words and "left" in spoken_words and set(spoken_words) <= set(text.lower().rstrip("?").split())
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.start < w.end <= duration + 1e-3 for w in words)
    # the colour word is sounding where eSpeak says: louder there than in the lead-in silence
    green = next(w for w in words if w.text.lower() == "green")
    inside = samples[int(green.start * sample_rate) : int(green.end * sample_rate)]
    assert np.sqrt(np.mean(inside**2)) > 0.02


def test_voices_rates_and_pitches_change_the_sound() -> None:
    text = "What shape is the red object?"
    base = speech.synthesize(text, "en-us")
    assert len(speech.synthesize(text, "en-us", rate=260).samples) < 0.85 * len(base.samples)
    other = speech.synthesize(text, "en-gb-x-rp+f3", pitch=80).samples
    n = min(len(other), len(base.samples))
    assert not np.allclose(other[:n], base.samples[:n], atol=1e-3)
    with pytest.raises(ValueError):
        speech.voice_name("en-us", "no-such-variant")
    with pytest.raises(ValueError):
        speech.synthesize("   ")


def test_unavailable_synthesizer_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "_engine", lambda: "speech synthesis needs the espeakng-loader package")
    ok, why = speech.available()
    assert not ok and "espeakng-loader" in why
    with pytest.raises(speech.SpeechUnavailable, match="espeakng-loader"):
        speech.synthesize("hello")


def test_training_and_test_voices_are_disjoint() -> None:
    train, test = set(spoken.voices("train")), set(spoken.voices("test"))
    assert len(train) > 400 and len(test) > 200 and not train & test
    for voice in train:
        dialect, _, variant = voice.partition("+")
        assert dialect not in spoken.HELDOUT_DIALECTS and variant not in spoken.HELDOUT_VARIANTS
    # Festival: a whole voice held out; Piper: one speaker, its test voices warped outside the training range
    assert spoken.voices("test", "festival") == ["ked_diphone"] and "ked_diphone" not in spoken.voices("train", "festival")
    assert len(spoken.voices("train", "festival")) == 2 and spoken.voices("train", "piper") == ["joe"]
    assert all(not spoken.TRAIN_WARP[0] <= w <= spoken.TRAIN_WARP[1] for w in spoken.PIPER_TEST_WARPS.values())
    assert spoken.voices("val", "espeak") == spoken.voices("train", "espeak")  # thresholds: training voices, fresh questions


def test_training_plan_is_balanced_deterministic_and_capped() -> None:
    plan = spoken.plan_train(60, seed=3)
    assert plan == spoken.plan_train(60, seed=3) and plan[:30] == spoken.plan_train(30, seed=3)
    assert [u.family for u in plan[:4]] == ["nonrelational", "relational"] * 2
    assert all(u.voice in spoken.voices("train", u.synth) and u.max_speech_s == spoken.MAX_TRAIN_SPEECH_S for u in plan)
    assert {u.synth for u in plan} == set(spoken.SYNTHS)
    assert all(spoken.TRAIN_WARP[0] <= u.warp <= spoken.TRAIN_WARP[1] for u in plan)
    samples = soc.generate("test", 2, wording="heldout")
    test_plan = spoken.plan_questions(samples)
    assert [u.text for u in test_plan] == [q.text for s in samples for q in s.questions]
    assert [u.synth for u in test_plan[:6]] == list(spoken.SYNTHS) * 2 and all(u.voice in spoken.voices("test", u.synth) for u in test_plan)
    pairs = [(sample, q) for sample in samples for q in sample.questions]
    for (sample, q), u in zip(pairs, test_plan):  # negate recovers every answer
        assert soc.answer(sample.scene, u.subtype, u.colour, u.negate) == q.answer


def test_valwarp_is_val_with_every_voice_moved_outside_the_training_warps() -> None:
    """`--split valwarp`: the val split's questions, voices and effects, only the vocal tract moved (x0.89 / x1.11)."""
    from dataclasses import replace

    samples = soc.generate("val", 2)
    val, warped = spoken.plan_questions(samples, "val"), spoken.plan_questions(samples, "valwarp")
    assert len(warped) == len(val) == 40 and [replace(u, warp=1.0) for u in warped] == [replace(u, warp=1.0) for u in val]
    assert [u.warp for u in warped[:7]] == [0.89] * 3 + [1.11] * 3 + [0.89]  # both warps in every synthesizer
    assert all(not spoken.TRAIN_WARP[0] <= u.warp <= spoken.TRAIN_WARP[1] for u in warped)
    assert all(u.warp not in spoken.PIPER_TEST_WARPS.values() and u.voice in spoken.voices("train", u.synth) for u in warped)
    assert all(spoken.TRAIN_WARP[0] <= u.warp <= spoken.TRAIN_WARP[1] for u in val)


def test_conditions_fix_one_effect_each() -> None:
    samples = soc.generate("test", 1)
    plans = {c: spoken.plan_questions(samples, condition=c) for c in ("mixed", "clean", "babble10", "room", "phone")}
    assert [u.voice for u in plans["clean"]] == [u.voice for u in plans["mixed"]]  # the same voices, other renderings
    for c, plan in plans.items():
        effects = [(u.babble_talkers, u.room_rt60 > 0, u.band, u.noise) for u in plan]
        if c == "clean":
            assert set(effects) == {(0, False, "", "")}
        elif c == "babble10":
            assert set(effects) == {(4, False, "", "")} and {u.babble_snr_db for u in plan} == {10.0}
        elif c == "room":
            assert all(b == 0 and r and not band and not n for b, r, band, n in effects) and min(u.room_rt60 for u in plan) >= 0.6
        elif c == "phone":
            assert set(effects) == {(0, False, "phone", "")}
    with pytest.raises(ValueError, match="condition"):
        spoken.plan_questions(samples, condition="underwater")


@pytest.mark.parametrize("synth", spoken.SYNTHS)
def test_every_synthesizer_renders_and_finds_the_colour_word(synth: str) -> None:
    """Each synthesizer voices the question; the colour word is sounding where its word times say. eSpeak keeps
    its pitch-flutter phase between calls and Piper samples its delivery, so a second rendering may differ a little."""
    u = next(u for u in spoken.plan_train(40, seed=1) if u.synth == synth)
    clean = spoken.Utterance(**{**u.__dict__, "room_rt60": 0.0, "band": "", "noise": "", "babble_talkers": 0, "semitones": 0.0, "gain_db": 0.0})
    x1, words1 = spoken.render(clean)
    x2, words2 = spoken.render(clean)
    assert abs(len(x1) - len(x2)) < 0.1 * len(x1) and np.abs(x1).max() <= 1.0
    end = spoken.colour_end(words1, u.colour)
    assert u.lead < end < len(x1) / 16000 and abs(end - spoken.colour_end(words2, u.colour)) < 0.25
    word = next(w for w in words1 if spoken.colour_end([w], u.colour) > 0)
    inside = x1[int(word.start * 16000) : int(word.end * 16000)]
    lead_in = x1[: int(u.lead * 16000) - 10]
    assert np.sqrt(np.mean(inside**2)) > 10 * max(np.sqrt(np.mean(lead_in**2)), 1e-4)


def test_rooms_bands_and_babble_do_what_they_say() -> None:
    from scipy.signal import welch

    from mmdemo.tasks.sort_of_clevr import augment

    x = speech.synthesize("What shape is the object furthest from the blue object?", "en-us").samples
    f, dry = welch(x, 16000, nperseg=1024)
    _, phone = welch(augment.band_limit(x, "phone"), 16000, nperseg=1024)
    band = (f > 500) & (f < 3000)
    assert phone[f > 4200].sum() < 1e-3 * dry[f > 4200].sum() and phone[band].sum() > 0.3 * dry[band].sum()

    def tail(ir: np.ndarray) -> float:  # the share of a room's energy arriving after 100 ms
        return float(np.sum(ir[1600:] ** 2) / np.sum(ir**2))

    assert tail(augment.room_response(0.8, np.random.default_rng(1))) > 2 * tail(augment.room_response(0.2, np.random.default_rng(1)))
    talk = augment.babble(len(x), 4, spoken.voices("train")[:20], np.random.default_rng(0))
    mixed = augment.at_snr(augment.rms(x), talk, 10.0)
    assert 20 * np.log10(augment.rms(x) / augment.rms(mixed)) == pytest.approx(10.0, abs=0.01)
    words = " ".join(augment.BABBLE_SENTENCES).lower().replace(".", " ").replace("?", " ").split()
    assert not set(words) & {*soc.COLOURS, "grey", "left", "right", "top", "bottom", "shape", "object", "closest", "furthest"}


def test_cache_is_content_keyed_and_reused(tmp_path: Path) -> None:
    settings = (16000, 40, 10)
    plan = spoken.plan_train(12)
    first = spoken.synthesize_missing(plan, tmp_path, "train", settings, workers=1, progress=False)
    again = spoken.synthesize_missing(plan, tmp_path, "train", settings, workers=1, progress=False)
    assert first["made"] == 12 and again == {"made": 0, "cached": 12, "seconds": again["seconds"], "utterances_per_s": None}
    pool = spoken.load_pool(plan, tmp_path, "train", settings, progress=False)
    assert len(pool) == 12 and pool.features.dtype == np.float16 and pool.frames(3).shape[1] == 40
    assert (pool.colour_ends > 0).all()
    assert len(spoken.read_words(tmp_path, "train", plan, settings)[0]) >= 3
    other = spoken.synthesize_missing(plan, tmp_path, "train", (16000, 64, 10), workers=1, progress=False)
    assert other["made"] == 12  # other features: other files, nothing stale reused


def test_synthesis_command_voices_the_spoken_presets_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdemo.config

    sizes = []
    monkeypatch.setattr(spoken, "synthesize_missing", lambda plan, *a, **k: sizes.append(len(plan)) or {})
    assert spoken.main(["--out", str(tmp_path), "--test-wording", "none", "--quiet"]) == 0
    assert sizes == [mmdemo.config.spoken_defaults()["spoken_utterances"]]  # what train --question-input audio reads
    monkeypatch.setattr(mmdemo.config, "spoken_defaults", lambda: {"spoken_utterances": 7})
    assert spoken.main(["--out", str(tmp_path), "--test-wording", "none", "--quiet"]) == 0
    assert sizes[-1] == 7


def test_training_processes_share_the_missing_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun each process makes the missing shards of its part (index k mod n) and then waits for the
    others' (load_pool): part 0 of 2 makes shards 0 and 2, waits until shard 1 appears (another process's, here
    copied in late by a thread), then loads all; a part whose shards never come gives up, naming why."""
    import shutil
    import threading
    import time

    settings = (16000, 40, 10)
    monkeypatch.setattr(spoken, "SHARD", 2)
    plan = spoken.plan_train(6)  # three shards: 0, 1, 2
    other = spoken.synthesize_missing(plan, tmp_path / "other", "train", settings, workers=1, progress=False, part=(1, 2))
    assert other["made"] == 2 and other["others"] == 4  # shard 1 made; shards 0 and 2 left to the other part
    (made_by_other,) = (tmp_path / "other" / "train").glob("*.npz")
    folder = tmp_path / "shared" / "train"
    copied: list[float] = []

    def the_other_process() -> None:  # finishes after this one has made its shards and started to wait
        while len(list(folder.glob("*.npz"))) < 2:
            time.sleep(0.05)
        time.sleep(1.0)
        shutil.copy(made_by_other, folder / "other.tmp")
        (folder / "other.tmp").replace(folder / made_by_other.name)  # whole, as save() renames a finished shard in
        copied.append(time.time())

    thread = threading.Thread(target=the_other_process)
    thread.start()
    pool = spoken.load_pool(plan, tmp_path / "shared", "train", settings, workers=1, progress=False, part=(0, 2))
    returned = time.time()
    thread.join()
    assert returned >= copied[0]  # it waited for the other process's shard
    assert len(pool) == 6 and len(list(folder.glob("*.npz"))) == 3
    monkeypatch.setattr(spoken, "POOL_WAIT_S", 0)
    with pytest.raises(RuntimeError, match="other training processes"):
        spoken.load_pool(plan, tmp_path / "empty", "train", settings, workers=1, progress=False, part=(1, 2))


def test_shipped_examples_match_their_index() -> None:
    folder = ROOT / "examples" / "spoken"
    index = json.loads((folder / "examples.json").read_text())
    assert len(index) == len(spoken.EXAMPLES) and sum(p.stat().st_size for p in folder.iterdir()) < 300_000
    for entry in index:
        info = sf.info(folder / entry["file"])
        assert info.samplerate == 16000 and info.channels == 1 and info.duration < 6
        assert entry["words"][-1][2] <= info.duration + 0.05


def run_cli(*args: str, module: str = "mmdemo") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_spoken_smoke_training_and_both_question_forms(tmp_path: Path) -> None:
    """train --question-input audio end to end, then predict from a file and from (rate, samples): same answer."""
    out, data = tmp_path / "ck", tmp_path / "data"
    r = run_cli(
        "train", "--question-input", "audio", "--out", str(out), "--train-images", "8", "--batch-images", "4",
        "--max-steps", "2", "--questions-per-image", "4", "--spoken-utterances", "24", "--eval-images", "1",
        "--hidden-dim", "16", "--text-dim", "16", "--attn-dim", "8", "--audio-channels", "8",
        "--spoken-data", str(data), "--synth-workers", "1", "--device", "cpu", "--quiet",
    )
    assert r.returncode == 0, r.stderr
    # the preset's image encoder comes from the previous typed default (hop2-unheld), named as the repository names it
    assert json.loads((out / "config.json").read_text())["train"]["init_image"] == "checkpoints/sort-of-clevr/hop2-unheld"
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["question_input"] == "audio" and config["train"]["questions_per_image"] == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_questions"] == 20 and metrics["voices"] == "held-out" and metrics["causal"] is None

    from mmdemo import load_predictor

    image = tmp_path / "scene.png"
    Image.fromarray(soc.generate("test", 1)[0].image).save(image)
    sample_rate, samples, _ = speech.synthesize("What shape is the red object?", "en-us-nyc+f3")
    wav = tmp_path / "q.wav"
    sf.write(wav, samples, sample_rate, subtype="PCM_16")
    predictor = load_predictor(str(out), device="cpu")
    int16 = np.round(samples * 32767).astype(np.int16)  # what the WAV file holds, as Gradio's numpy audio gives it
    from_file, from_tuple = predictor.predict(str(image), str(wav)), predictor.predict(str(image), (sample_rate, int16))
    assert from_file.answer == from_tuple.answer
    assert from_file.probs == pytest.approx(from_tuple.probs, abs=1e-5)
    assert from_file.step_times == from_tuple.step_times and from_file.step_times[0] == pytest.approx(0.04)

    r = run_cli("predict", "--checkpoint", str(out), "--image", str(image), "--audio", str(wav), "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    pred = json.loads(r.stdout.strip().splitlines()[-1])
    assert pred["answer"] == from_file.answer and len(pred["step_times"]) == len(pred["tokens"]) == len(pred["region_attention"])
    r = run_cli("predict", "--checkpoint", str(out), "--image", str(image), "--text", "What shape is the red object?")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--audio" in r.stderr


def test_training_synthesizers_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdemo.tasks.sort_of_clevr import synthesizers

    assert synthesizers.festival([]) == []
    with pytest.raises(ValueError, match="Festival voice"):
        synthesizers.festival([synthesizers.FestivalLine("no_such_voice", "hello", 1.0, 100.0, 10.0)])
    with pytest.raises(ValueError, match="Piper voice"):
        synthesizers.piper(synthesizers.PiperLine("nobody", "hello", 1.0, 0.6, 0.8))
    monkeypatch.setattr(synthesizers.shutil, "which", lambda name: None)
    ok, why = synthesizers.available()
    assert not ok and "apt-get install festival" in why
    with pytest.raises(speech.SpeechUnavailable, match="festival"):
        synthesizers.festival([synthesizers.FestivalLine("kal_diphone", "hello", 1.0, 100.0, 10.0)])
