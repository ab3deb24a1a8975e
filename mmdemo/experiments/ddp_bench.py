"""Training throughput of one process against several under torchrun, on this machine, in one run.

    python -m mmdemo.experiments.ddp_bench [--nproc 2] [--steps 20] [--batch-images 32] [--device cpu] [--json]

Every configuration trains the same model from the same seed for --steps steps of the same global batch
(--batch-images scenes x 20 questions) with `python -m mmdemo train --no-evaluate`, and reports questions
per second of the training loop (config.json: questions_seen / seconds). On CPU: one process with one
thread, one process with --nproc threads, and --nproc processes of one thread each (gloo). On a GPU:
one process, and one process per GPU (nccl) when there are several.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


def train_run(launch: list[str], args: list[str], out: Path, threads: int) -> dict:
    """Run one training, return its train section."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    cmd = [*launch, "-m", "mmdemo", *args, "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return json.loads((out / "config.json").read_text())["train"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.experiments.ddp_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes for the torchrun configuration (default %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="training steps per configuration (default %(default)s)")
    p.add_argument("--batch-images", type=int, default=32, help="global batch in scenes, 20 questions each (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = p.parse_args(argv)
    import torch

    n = args.nproc
    # Enough scenes for the steps in one epoch, so every configuration sees the same images and questions.
    common = ["train", "--train-images", str(args.steps * args.batch_images), "--batch-images", str(args.batch_images),
              "--max-steps", str(args.steps), "--device", args.device, "--quiet", "--no-evaluate", "--log-every", str(args.steps)]
    python = [sys.executable]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)]
    if args.device == "cpu":
        configs = [("1 process x 1 thread", python, ["--threads", "1"], 1),
                   (f"1 process x {n} threads", python, ["--threads", str(n)], n),
                   (f"{n} processes x 1 thread (torchrun, gloo)", torchrun, [], 1)]
    else:
        configs = [("1 process, 1 GPU", python, [], 1)]
        if torch.cuda.device_count() >= n:
            configs.append((f"{n} processes, {n} GPUs (torchrun, nccl)", torchrun, [], 1))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, launch, extra, threads) in enumerate(configs):
            train = train_run(launch, [*common, *extra], Path(tmp, str(k)), threads)
            rows.append({"configuration": name, "world_size": train["world_size"], "steps": train["steps"],
                         "seconds": train["seconds"], "questions_per_s": round(train["questions_seen"] / train["seconds"], 1)})
    base = rows[0]["questions_per_s"]
    print("| configuration | steps | seconds | questions/s | vs first |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        row["speedup"] = round(row["questions_per_s"] / base, 2)
        print(f"| {row['configuration']} | {row['steps']} | {row['seconds']} | {row['questions_per_s']} | {row['speedup']}x |")
    if args.json:
        print(json.dumps({"device": args.device, "cpus": os.cpu_count(), "batch_images": args.batch_images, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
