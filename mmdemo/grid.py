"""The ablation grid: fusion x cell, same budget and seed; and the results table README shows.

python -m mmdemo.grid train [--epochs E] [--jobs N]   trains every grid model without metrics.json
python -m mmdemo.grid table                          prints the markdown table from metrics.json files
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, METRICS, ROOT
from mmdemo.config import CELLS, FUSIONS

GRID_ROOT = ROOT / "sort-of-clevr"
PAPER = [  # (model, non-relational, relational, closest/furthest), from the spec's reference table
    ("CNN+MLP (paper)", "~94%", "63%", "52.3%"),
    ("CNN+RN (paper)", ">94%", ">94%", "-"),
    ("CNN+MLP (kimhc6028, 100 epochs)", "66%", "66%", "-"),
    ("CNN+RN (kimhc6028, 20 epochs)", "99%", "89%", "-"),
]


def paper_table() -> str:
    """Markdown: the reference results on the original (binary-question) Sort-of-CLEVR."""
    rows = ["| model | non-relational | relational | closest/furthest |", "|---|---|---|---|"]
    return "\n".join(rows + [f"| {m} | {a} | {b} | {c} |" for m, a, b, c in PAPER])


def grid_folder(fusion: str, cell: str) -> Path:
    return GRID_ROOT / f"{fusion}-{cell}"


def train_grid(epochs: float, jobs: int, seed: int, force: bool) -> None:
    """Train each grid cell in its own process (one CPU thread each, `jobs` at a time)."""
    todo = [(f, c) for f in FUSIONS for c in CELLS]
    running: list[tuple[subprocess.Popen, str, float]] = []
    while todo or running:
        while todo and len(running) < jobs:
            fusion, cell = todo.pop(0)
            lock = grid_folder(fusion, cell) / ".training"
            if not force and (lock.exists() or (lock.parent / METRICS).is_file()):
                continue  # trained, or being trained by another runner
            lock.parent.mkdir(parents=True, exist_ok=True)
            lock.touch()
            cmd = [
                sys.executable, "-m", "mmdemo", "train", "--fusion", fusion, "--cell", cell, "--epochs", str(epochs),
                "--seed", str(seed), "--text-encoder", "minilm_static", "--frames", "0", "--no-attn-hold", "--threads", "1", "--quiet", "--out", str(grid_folder(fusion, cell)),
            ]
            running.append((subprocess.Popen(cmd), f"{fusion}-{cell}", time.time()))
            print(f"started {fusion}-{cell}", flush=True)
        time.sleep(2)
        for item in list(running):
            proc, name, start = item
            if proc.poll() is not None:
                running.remove(item)
                (grid_folder(*name.split("-")) / ".training").unlink(missing_ok=True)
                status = "done" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
                print(f"{status} {name} in {time.time() - start:.0f}s", flush=True)


def pct(v: float | None) -> str:
    """0.9775 -> '97.8%'; None -> 'n/a'."""
    return "n/a" if v is None else f"{100 * v:.1f}%"


def results_table() -> str:
    """Markdown: every grid checkpoint (and the default) beside the paper's numbers."""
    rows = ["| model | non-relational | relational | closest/furthest | count | overall | grounding | train time |",
            "|---|---|---|---|---|---|---|---|"]
    folders = [(f"{f}-{c}", grid_folder(f, c)) for f in FUSIONS for c in CELLS] + [("**default**", DEFAULT)]
    for name, folder in folders:
        path = folder / METRICS
        if not path.is_file():
            rows.append(f"| {name} | (not trained) | | | | | | |")
            continue
        m = json.loads(path.read_text())
        secs = m.get("train_seconds")
        rows.append(
            f"| {name} | {pct(m['nonrelational'])} | {pct(m['relational'])} | {pct(m['closest_furthest'])} | "
            f"{pct(m['count'])} | {pct(m['overall'])} | {pct(m['grounding'])} | {'' if secs is None else f'{secs / 60:.1f} min'} |"
        )
    for name, nonrel, rel, cf in PAPER:
        rows.append(f"| {name} | {nonrel} | {rel} | {cf} | | | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.grid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the fusion x cell grid")
    t.add_argument("--epochs", type=float, default=2.0, help="epochs for every grid model (default %(default)s)")
    t.add_argument("--jobs", type=int, default=2, help="models trained at once, one thread each (default %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="seed for every grid model (default %(default)s)")
    t.add_argument("--force", action="store_true", help="retrain models that already have metrics.json")
    sub.add_parser("table", help="print the results table")
    args = parser.parse_args(argv)
    if args.command == "train":
        train_grid(args.epochs, args.jobs, args.seed, args.force)
    print(results_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
