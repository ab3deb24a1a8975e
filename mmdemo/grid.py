"""The ablation grid: fusion x cell, same budget and seed; the fusions at the default's full budget; and
the results table docs/RESULTS.md shows.

python -m mmdemo.grid train [--epochs E] [--jobs N]        the 3 x 3 grid at a reduced budget (2 epochs)
python -m mmdemo.grid full [--seeds 0 1] [--jobs N]        sum, concat, attention with the default's whole
                                                           recipe (GRU, causal MiniLM, 16 epochs, frames, supervision)
python -m mmdemo.grid table                                the markdown table from metrics.json files
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
FULL_ROOT = GRID_ROOT / "full"  # sum / concat / attention at the default's full budget
FULL_SEEDS = (0, 1)
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


def full_folder(fusion: str, seed: int) -> Path:
    """Where a full-budget fusion model lives; attention with seed 0 is the shipped default itself."""
    return DEFAULT if (fusion, seed) == ("attention", 0) else FULL_ROOT / f"{fusion}-s{seed}"


def run_jobs(jobs: list[tuple[Path, list[str]]], parallel: int, force: bool) -> None:
    """Run `python -m mmdemo train <args> --out folder` for each job, `parallel` at a time; a folder with
    metrics.json (trained) or .training (being trained by another runner) is skipped unless force."""
    todo = list(jobs)
    running: list[tuple[subprocess.Popen, Path, float]] = []
    while todo or running:
        while todo and len(running) < parallel:
            folder, args = todo.pop(0)
            lock = folder / ".training"
            if not force and (lock.exists() or (folder / METRICS).is_file()):
                continue
            folder.mkdir(parents=True, exist_ok=True)
            lock.touch()
            cmd = [sys.executable, "-m", "mmdemo", "train", *args, "--quiet", "--out", str(folder)]
            running.append((subprocess.Popen(cmd), folder, time.time()))
            print(f"started {folder.name}", flush=True)
        time.sleep(2)
        for item in list(running):
            proc, folder, start = item
            if proc.poll() is not None:
                running.remove(item)
                (folder / ".training").unlink(missing_ok=True)
                status = "done" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
                print(f"{status} {folder.name} in {time.time() - start:.0f}s", flush=True)


def train_grid(epochs: float, jobs: int, seed: int, force: bool) -> None:
    """Each grid cell in its own process (one CPU thread each): static MiniLM embeddings, no frames, no hold."""
    run_jobs(
        [
            (grid_folder(f, c), ["--fusion", f, "--cell", c, "--epochs", str(epochs), "--seed", str(seed),
                                 "--text-encoder", "minilm_static", "--no-causal", "--frames", "0", "--no-attn-hold", "--threads", "1"])
            for f in FUSIONS for c in CELLS
        ],
        jobs, force,
    )


def train_full(seeds: list[int], fusions: list[str], jobs: int, force: bool) -> None:
    """The fusions with the default's whole recipe, one process each (one thread each when jobs > 1)."""
    threads = ["--threads", "1"] if jobs > 1 else []
    run_jobs(
        [(full_folder(f, s), ["--fusion", f, "--seed", str(s), *threads]) for s in seeds for f in fusions if full_folder(f, s) != DEFAULT],
        jobs, force,
    )


def pct(v: float | None) -> str:
    """0.9775 -> '97.8%'; None -> 'n/a'."""
    return "n/a" if v is None else f"{100 * v:.1f}%"


def results_table() -> str:
    """Markdown: the grid and the full-budget fusion models (each row says its budget) beside the paper's numbers."""
    rows = ["| model | budget | non-relational | relational | closest/furthest | count | overall | grounding | causal | train time |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    folders = [(f"{f}-{c}", "2 ep, static text, reads ahead", grid_folder(f, c)) for f in FUSIONS for c in CELLS]
    folders += [(f"{f}-gru seed {s}", "full (16 ep, default recipe)", full_folder(f, s)) for s in FULL_SEEDS for f in FUSIONS]
    folders += [("reads-ahead", "full, reads ahead", GRID_ROOT / "reads-ahead")]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.grid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the fusion x cell grid")
    t.add_argument("--epochs", type=float, default=2.0, help="epochs for every grid model (default %(default)s)")
    t.add_argument("--jobs", type=int, default=2, help="models trained at once, one thread each (default %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="seed for every grid model (default %(default)s)")
    t.add_argument("--force", action="store_true", help="retrain models that already have metrics.json")
    f = sub.add_parser("full", help="train sum, concat and attention with the default's full recipe")
    f.add_argument("--seeds", type=int, nargs="+", default=list(FULL_SEEDS), help="seeds (default %(default)s)")
    f.add_argument("--fusions", nargs="+", choices=FUSIONS, default=list(FUSIONS), help="fusions (default: all)")
    f.add_argument("--jobs", type=int, default=1, help="models trained at once (default %(default)s; > 1: one thread each)")
    f.add_argument("--force", action="store_true", help="retrain models that already have metrics.json")
    sub.add_parser("table", help="print the results table")
    args = parser.parse_args(argv)
    if args.command == "train":
        train_grid(args.epochs, args.jobs, args.seed, args.force)
    elif args.command == "full":
        train_full(args.seeds, args.fusions, args.jobs, args.force)
    print(results_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
