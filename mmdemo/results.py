"""The Sort-of-CLEVR results tables (the grid, the full-budget fusions, the paper) from the checkpoints' metrics.json.

Read by the app's Results tab and printed by the grid runner (mmdemo.experiments.grid).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, METRICS, ROOT
from mmdemo.config import CELLS, FUSIONS

GRID_ROOT = ROOT / "sort-of-clevr"
FULL_ROOT = GRID_ROOT / "full"  # sum / concat / attention at the default's full budget
FULL_SEEDS = (0, 1)
PAPER = [  # (model, non-relational, relational, closest/furthest), from the spec's reference table
    ("CNN+MLP (paper)", "~94%", "63%", "52.3%"),
    ("CNN+RN (paper)", ">94%", ">94%", "-"),
    ("CNN+MLP (a public reimplementation, 100 epochs)", "66%", "66%", "-"),
    ("CNN+RN (a public reimplementation, 20 epochs)", "99%", "89%", "-"),
]


def paper_table() -> str:
    """Markdown: the reference results on the original (binary-question) Sort-of-CLEVR."""
    rows = ["| model | non\u2011relational | relational | closest / furthest |", "|---|---|---|---|"]
    return "\n".join(rows + [f"| {m} | {a} | {b} | {c} |" for m, a, b, c in PAPER])


def grid_folder(fusion: str, cell: str) -> Path:
    return GRID_ROOT / f"{fusion}-{cell}"


def full_folder(fusion: str, seed: int) -> Path:
    """Where a full-budget fusion model lives; attention with seed 0 is the shipped default itself."""
    return DEFAULT if (fusion, seed) == ("attention", 0) else FULL_ROOT / f"{fusion}-s{seed}"


GRID_BUDGET = "2 ep, static text, reads ahead"
FULL_BUDGET = "full (16 ep, default recipe)"


def trained_models() -> list[tuple[str, str, Path]]:
    """(name, budget, folder) of the typed Sort-of-CLEVR models compared, in the one order the Compare tab and
    the results table show: the default, the other fusions at its full budget seed by seed, then the
    reduced-budget grid. Folders that may not be trained yet are the caller's to skip."""
    full = [(f"{f}-gru seed {s}", FULL_BUDGET, full_folder(f, s)) for s in FULL_SEEDS for f in FUSIONS]
    full.sort(key=lambda row: row[2] != DEFAULT)  # stable: the default first, the rest as they were
    return [*full, *[(f"{f}-{c}", GRID_BUDGET, grid_folder(f, c)) for f in FUSIONS for c in CELLS]]


def compared_models() -> list[tuple[str, str, Path]]:
    """What the Compare tab runs: trained_models(), with the shipped default named "default"."""
    return [("default" if folder == DEFAULT else name, budget, folder) for name, budget, folder in trained_models()]


def pct(v: float | None) -> str:
    """0.9775 -> '97.8%'; None -> 'n/a'."""
    return "n/a" if v is None else f"{100 * v:.1f}%"


def results_table() -> str:
    """Markdown: the grid and the full-budget fusion models (each row says its budget) beside the paper's numbers."""
    rows = ["| model | budget | non\u2011relational | relational | closest / furthest | count | overall | grounding | causal | train time |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    folders = [*trained_models(), ("hop2-unheld (previous default)", "full, hop 2 at the colour word only", GRID_ROOT / "hop2-unheld"),
               ("reads-ahead", "full, reads ahead", GRID_ROOT / "reads-ahead")]
    for name, budget, folder in folders:
        path = folder / METRICS
        if not path.is_file():
            rows.append(f"| {name} | {budget} | (not trained) | | | | | | | |")
            continue
        m = json.loads(path.read_text())
        secs = m.get("train_seconds")
        name = f"**{name} (default)**" if folder == DEFAULT else name
        rows.append(
            f"| {name} | {budget} | {pct(m['nonrelational'])} | {pct(m['relational'])} | {pct(m['closest_furthest'])} | "
            f"{pct(m['count'])} | {pct(m['overall'])} | {pct(m['grounding'])} | {pct(m.get('causal'))} | {'' if secs is None else f'{secs / 60:.1f} min'} |"
        )
    for name, nonrel, rel, cf in PAPER:
        rows.append(f"| {name} | | {nonrel} | {rel} | {cf} | | | | | |")
    return "\n".join(rows)
