"""The ablation grid: fusion x cell, same budget and seed; the fusions at the default's full budget; and
the results table docs/RESULTS.md shows.

python -m mmdemo.experiments.grid train [--epochs E] [--jobs N]        the 3 x 3 grid at a reduced budget (2 epochs)
python -m mmdemo.experiments.grid full [--seeds 0 1] [--jobs N]        sum, concat, attention with the default's whole
                                                           recipe (GRU, causal MiniLM, 16 epochs, frames, supervision)
python -m mmdemo.experiments.grid table                                the markdown table from metrics.json files
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, METRICS
from mmdemo.config import CELLS, FUSIONS, as_flags, preset
from mmdemo.results import FULL_SEEDS, full_folder, grid_folder, results_table


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
    """Each grid cell in its own process, with the grid preset (mmdemo/configs/grid.json) and this epochs and seed."""
    recipe = as_flags({**preset("grid"), "epochs": epochs, "seed": seed})
    run_jobs([(grid_folder(f, c), ["--fusion", f, "--cell", c, *recipe]) for f in FUSIONS for c in CELLS], jobs, force)


def train_full(seeds: list[int], fusions: list[str], jobs: int, force: bool) -> None:
    """The fusions with the default's whole recipe, one process each (one thread each when jobs > 1)."""
    threads = ["--threads", "1"] if jobs > 1 else []
    run_jobs(
        [(full_folder(f, s), ["--fusion", f, "--seed", str(s), *threads]) for s in seeds for f in fusions if full_folder(f, s) != DEFAULT],
        jobs, force,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.grid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the fusion x cell grid")
    t.add_argument("--epochs", type=float, default=preset("grid")["epochs"], help="epochs for every grid model (default %(default)s, from configs/grid.json)")
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
