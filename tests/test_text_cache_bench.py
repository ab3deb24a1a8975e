"""mmdemo.experiments.text_cache_bench: both ways compute the same sentences' states; bad counts are refused."""

from __future__ import annotations

import subprocess
import sys

from mmdemo.experiments.text_cache_bench import first_batches, run


def test_the_first_batches_are_a_new_runs_and_mostly_distinct() -> None:
    drawn = first_batches(2)
    assert len(drawn) == 2
    ids, mask = drawn[0]
    assert ids.shape == mask.shape and ids.shape[0] >= 32  # every image brings several questions
    lengths = mask.sum(1)
    assert int(lengths.min()) < int(lengths.max())  # lengths vary, so padding costs something


def test_padded_and_bucketed_states_agree() -> None:
    result = run(batches=1)
    assert result["sentences"] > 100 and result["max_abs_diff"] <= 1e-4
    assert result["padded_s"] > 0 and result["bucketed_s"] > 0


def test_zero_batches_is_one_line_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.text_cache_bench", "--batches", "0"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--batches" in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr
