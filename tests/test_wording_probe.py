"""mmdemo.experiments.wording_probe: the answer key follows --subtype and --negate, bad templates are refused."""

from __future__ import annotations

import subprocess
import sys

from mmdemo.checkpoint import DEFAULT
from mmdemo.experiments.wording_probe import probe


def test_the_probe_keys_answers_by_subtype_and_side() -> None:
    top = "Is the {c} object in the top half of the image?"
    plain = probe(str(DEFAULT), "top", [top, "What shape is the {c} object?"], images=10)
    assert plain[top] >= 0.95 and plain["What shape is the {c} object?"] <= 0.1  # a shape question keyed as "top": it says a shape, not yes or no
    assert probe(str(DEFAULT), "top", [top], negate=True, images=10)[top] <= 0.05  # the same wording keyed as "bottom"


def test_a_template_without_the_colour_is_one_line_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.wording_probe", "--subtype", "shape", "What shape?"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "{c}" in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr
