"""mmdemo.experiments.pool_silence: the silent share of a pool and what a cap on lead-in and trail would save."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdemo.experiments.pool_silence import silence
from mmdemo.tasks.sort_of_clevr.speech import Word


def test_lead_in_and_trail_are_measured_from_the_words_and_the_length() -> None:
    words = [
        [Word("IS", 0.5, 0.8), Word("RED", 0.8, 1.5)],  # 0.5 s lead-in, 1.5 s trail in 3.0 s
        [Word("TOP", 0.1, 0.9)],  # 0.1 s lead-in, 0.1 s trail in 1.0 s
        [],  # no words: left out
    ]
    report = silence(words, np.array([3.0, 1.0, 2.0]), caps=(0.2, 2.0))
    assert report["utterances"] == 2 and report["mean_seconds"] == 2.0
    assert report["mean_lead_s"] == 0.3 and report["mean_trail_s"] == 0.8
    assert report["silent_share"] == pytest.approx((0.5 + 1.5 + 0.1 + 0.1) / 4.0, abs=1e-4)
    assert report["saved_share"]["0.2"] == pytest.approx((0.3 + 1.3) / 4.0, abs=1e-4)  # only the first utterance is over the cap
    assert report["saved_share"]["2"] == 0.0  # a cap above every silence saves nothing
    with pytest.raises(ValueError):
        silence([[]], np.array([1.0]))


def test_bad_size_is_one_line_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.pool_silence", "--utterances", "0"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--utterances" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_it_reads_a_voiced_pool(tmp_path: Path) -> None:
    from mmdemo.tasks.sort_of_clevr import synthesizers

    if not synthesizers.available()[0]:
        pytest.skip(f"no training synthesizers: {synthesizers.available()[1]}")
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.pool_silence", "--utterances", "12", "--data", str(tmp_path), "--json"],
                       check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["utterances"] == 12 and 1.0 < report["mean_seconds"] < 6.0  # every plan utterance has words
    assert 0.0 < report["silent_share"] < 1.0
    saved = [report["saved_share"][k] for k in ("0.2", "0.3", "0.4")]
    assert report["silent_share"] > saved[0] >= saved[1] >= saved[2] >= 0.0
