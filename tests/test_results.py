"""README's results come from the files the measuring commands write (mmdemo/results.py), and the files keep them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmdemo.checkpoint import KEPT_MEASURES, read_metrics, record_measure, write_metrics
from mmdemo.results import README_BEGIN, README_END, readme_results, share

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(text: str) -> str:
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    return text[start:end]


def test_readme_results_are_what_the_files_say() -> None:
    assert readme_block(README.read_text()) == readme_results(), "run: python -m mmdemo.results readme, and paste it into README"


def test_a_changed_number_in_readme_is_caught() -> None:
    block = readme_block(README.read_text())
    numbers = list(re.finditer(r"\d+\.\d+%", block))
    assert len(numbers) > 20
    for m in numbers[:: max(1, len(numbers) // 5)]:  # a few of them, anywhere in the block
        changed = block[: m.start()] + ("1" if block[m.start()] != "1" else "2") + block[m.start() + 1 :]
        assert changed != readme_results()


def test_share_keeps_what_was_measured() -> None:
    assert [share(v) for v in (0.9625, 0.996, 1.0, 0.0, None)] == ["96.25%", "99.6%", "100%", "0%", "n/a"]


def test_recorded_measures_survive_a_new_evaluation(tmp_path: Path) -> None:
    write_metrics(tmp_path, {"nonrelational": 0.5})
    record_measure(tmp_path, "heldout_wording", {"nonrelational": 0.9})
    record_measure(tmp_path, "bench", {"predict_ms_p50": 9.0})
    write_metrics(tmp_path, {"nonrelational": 0.6, "relational": 0.7})  # evaluate --write again
    m = read_metrics(tmp_path)
    assert m == {"heldout_wording": {"nonrelational": 0.9}, "bench": {"predict_ms_p50": 9.0}, "nonrelational": 0.6, "relational": 0.7}
    with pytest.raises(ValueError):
        record_measure(tmp_path, "anything", 1)
    assert set(KEPT_MEASURES) == {"heldout_wording", "bench", "faithfulness", "conditions", "offtask"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
