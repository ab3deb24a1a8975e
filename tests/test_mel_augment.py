"""Augmentation of cached log-mel frames (mmdemo/tasks/sort_of_clevr/mel_augment.py): the tail holds the energy
it says and comes only from earlier frames, talk sits at the SNR drawn, nothing is written in place, the draws
are seeded, and a spoken batch applies what was drawn."""

from __future__ import annotations

import numpy as np
import pytest

from mmdemo.audio import LOG_EPS
from mmdemo.tasks.sort_of_clevr import mel_augment as ma


def frames(seed: int, length: int = 150) -> np.ndarray:
    return np.random.default_rng(seed).normal(-6.0, 2.0, (length, 40)).astype(np.float16)


@pytest.mark.parametrize("under_db", [0.0, 6.0, 12.0])
def test_tail_holds_its_energy_and_is_causal(under_db: float) -> None:
    quiet = np.full((4000, 40), np.log(LOG_EPS), np.float16)  # the log's floor (no power)
    x = quiet.copy()
    x[10] = 0.0  # one loud frame
    d = ma.MelDraw(ma.Tail(0.5, under_db), None)
    y, y_quiet = ma.apply(x, d, None, 0.01), ma.apply(quiet, d, None, 0.01)
    np.testing.assert_array_equal(y[:10], y_quiet[:10])  # nothing before the frame
    added = ma.power(y) - ma.power(y_quiet)
    assert np.abs(added[10] - ma.power(x)[10]).max() < 1e-3  # the frame itself: only its own power, no tail of it yet
    ratio_db = 10 * np.log10(added[11:].sum() / ma.power(x)[10].sum())
    assert ratio_db == pytest.approx(-under_db, abs=0.05)
    # The power falls 60 dB in RT60 = 0.5 s = 50 frames.
    assert 10 * np.log10(added[61, 0] / added[11, 0]) == pytest.approx(-60.0, abs=0.5)


def test_tail_never_hears_the_future() -> None:
    x = frames(0)
    later = x.astype(np.float32).copy()
    later[90:] += 3.0
    d = ma.MelDraw(ma.Tail(0.9, 2.0), None)
    a, b = ma.apply(x, d, None, 0.01), ma.apply(later, d, None, 0.01)
    np.testing.assert_array_equal(a[:90], b[:90])
    assert np.abs(a[90:] - b[90:]).min() > 0


@pytest.mark.parametrize("snr_db", [3.0, 10.0, 20.0])
def test_talk_is_mixed_at_its_snr(snr_db: float) -> None:
    pool = [frames(1, 90), frames(2, 200), frames(3, 40)]
    x = frames(0)
    y = ma.apply(x, ma.MelDraw(None, ma.Talk([0, 1, 2], [5, 150, 39], snr_db)), pool.__getitem__, 0.01)
    talk = ma.power(y) - ma.power(x)
    assert 10 * np.log10(ma.power(x).mean() / talk.mean()) == pytest.approx(snr_db, abs=0.01)
    assert y.shape == x.shape and y.dtype == np.float32


def test_nothing_is_written_and_nothing_drawn_is_the_identity() -> None:
    x, pool = frames(0), [frames(1)]
    before = x.copy()
    ma.apply(x, ma.MelDraw(ma.Tail(0.4, 1.0), ma.Talk([0], [3], 5.0)), pool.__getitem__, 0.01)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(pool[0], frames(1))
    assert ma.apply(x, ma.MelDraw(None, None), None, 0.01) is x and ma.apply(x, None, None, 0.01) is x


def test_draws_are_seeded_in_range_and_at_their_rates() -> None:
    lengths = np.array([90, 200, 40, 300])
    draws = [ma.draw(lengths, 0.3, 0.6, np.random.default_rng([7, i])) for i in range(2000)]
    assert draws[:50] == [ma.draw(lengths, 0.3, 0.6, np.random.default_rng([7, i])) for i in range(50)]
    tails = [d.tail for d in draws if d.tail]
    talks = [d.talk for d in draws if d.talk]
    assert len(tails) / 2000 == pytest.approx(0.3, abs=0.04) and len(talks) / 2000 == pytest.approx(0.6, abs=0.04)
    assert all(ma.RT60_S[0] <= t.rt60 <= ma.RT60_S[1] and ma.TAIL_DB[0] <= t.under_db <= ma.TAIL_DB[1] for t in tails)
    assert all(ma.TALKERS[0] <= len(t.ids) <= ma.TALKERS[1] for t in talks)
    assert all(0 <= s < lengths[i] for t in talks for i, s in zip(t.ids, t.starts))
    assert all(ma.BABBLE_SNR_DB[0] <= t.snr_db <= ma.BABBLE_SNR_DB[1] for t in talks)
    off = [ma.draw(lengths, 0.0, 0.0, np.random.default_rng(1)) for _ in range(20)]
    assert all(d == ma.MelDraw(None, None) for d in off)


def test_a_spoken_batch_applies_what_was_drawn() -> None:
    """SpokenQuestions draws mel augmentation only when it is on, and the batch's frames are the draw applied
    to the pool's frames (then SpecAugment, off here)."""
    from mmdemo.config import ModelConfig
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr.batches import SpokenQuestions
    from mmdemo.tasks.sort_of_clevr.spoken import SpokenPool, plan_train

    plan = plan_train(6, seed=0)
    lengths = [120, 80, 150, 60, 100, 90]
    feats = [frames(i, n) for i, n in enumerate(lengths)]
    pool = SpokenPool(plan, np.concatenate(feats), np.r_[0, np.cumsum(lengths)], np.full(6, 0.5, np.float32))
    cfg = ModelConfig(question_input="audio", heard_classes=14)
    scenes = [soc.generate("train", 1, seed=3)[0].scene]
    images = np.zeros((1, 3, cfg.image_size, cfg.image_size), np.uint8)

    plain = SpokenQuestions(pool, cfg, 4)
    drawn = plain.draw(scenes, np.random.default_rng(9))
    assert drawn[0].mel is None
    augmented = SpokenQuestions(pool, cfg, 4, mel_reverb=1.0, mel_babble=1.0, mel_warp=1.0)
    drawn = augmented.draw(scenes, np.random.default_rng(9))
    assert all(d.tail is not None and d.talk is not None and d.warp is not None for d in drawn[0].mel)
    batch = augmented.make(images, drawn)
    for row, (u, d) in enumerate(zip(drawn[0].utterances, drawn[0].mel)):
        want = ma.apply(pool.frames(u), d, pool.frames, cfg.hop_ms / 1000)
        np.testing.assert_allclose(batch.frames[row, : len(want)].numpy(), want, rtol=0, atol=1e-6)
        assert not np.allclose(want, pool.frames(u).astype(np.float32))


def test_voice_warp_moves_the_spectrum_by_its_factor_and_keeps_the_ends() -> None:
    """A peak at band 20 moves to ~20 x factor; factor 1 is the identity; the bottom and top bands stay; each
    frame is warped alone (a later frame changes nothing before it)."""
    x = np.full((5, 40), -8.0, np.float32)
    x[:, 20] = 0.0
    for factor in (0.88, 0.95, 1.05, 1.12):
        y = ma.apply(x, ma.MelDraw(None, None, factor), None, 0.01)
        assert abs(int(np.argmax(y[0])) - 20 * factor) <= 1.0
        src = ma.warp_sources(40, factor)
        assert src[0] == 0.0 and src[-1] == pytest.approx(39.0) and np.all(np.diff(src) > 0)
    np.testing.assert_allclose(ma.apply(x, ma.MelDraw(None, None, 1.0), None, 0.01), x)
    z = frames(0).astype(np.float32)
    later = z.copy()
    later[90:] += 3.0
    d = ma.MelDraw(ma.Tail(0.5, 3.0), None, 1.1)
    np.testing.assert_array_equal(ma.apply(z, d, None, 0.01)[:90], ma.apply(later, d, None, 0.01)[:90])


def test_warp_draws_come_last_and_only_when_on() -> None:
    """With the warp off the stream is drawn exactly as before it existed; on, it is drawn at its rate, in range."""
    lengths = np.array([90, 200, 40, 300])
    plain = [ma.draw(lengths, 0.3, 0.6, np.random.default_rng([3, i])) for i in range(300)]
    warped = [ma.draw(lengths, 0.3, 0.6, np.random.default_rng([3, i]), warp=0.5) for i in range(300)]
    assert [(d.tail, d.talk) for d in warped] == [(d.tail, d.talk) for d in plain]
    assert all(d.warp is None for d in plain)
    factors = [d.warp for d in warped if d.warp is not None]
    assert len(factors) / 300 == pytest.approx(0.5, abs=0.08)
    assert all(ma.WARP[0] <= f <= ma.WARP[1] for f in factors)
