"""mmdemo.experiments.heard_probe: the shipped spoken model heard the questions; a typed checkpoint is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmdemo.experiments.heard_probe import SPOKEN, probe

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_shipped_spoken_model_names_what_it_heard(tmp_path: Path) -> None:
    result = probe(SPOKEN, images=5, spoken_data=str(tmp_path))
    assert result["questions"] == 100
    assert result["colour"] >= 0.8 and result["kind"] >= 0.9 and result["answer"] >= 0.8


def test_a_typed_checkpoint_is_one_line_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.heard_probe", "--checkpoint", str(ROOT / "checkpoints" / "sort-of-clevr" / "default")],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a spoken checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
