"""The GPU table of docs/SCALING.md, measured in one run on a CUDA machine (under 8 minutes on one GPU):

    python -m mmdemo.experiments.gpu_check [--json]

Rows: the same training run on the CPU and on the GPU (fp32), compared weight by weight after STEPS steps,
past the learning-rate warm-up; the same run in 2 GPU processes (nccl) against 1, where there are 2 GPUs;
predict on the GPU against the CPU (shipped default); `bench` on both (training throughput, predict latency).
It prints the rows as markdown; writing them into the doc is left to a person. Without CUDA: one line on
stderr, exit 2. tests/test_gpu.py checks the same comparisons (weight_gap) with its bar.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = 210  # the scene task warms the learning rate up over 200 steps: the last 10 run at the peak
TINY = ["train", "--train-images", "16", "--batch-images", "8", "--hidden-dim", "16", "--text-dim", "16", "--image-channels", "8",
        "--attn-dim", "8", "--epochs", "200", "--quiet", "--no-evaluate", "--log-every", "10"]
# step_score.bias adds the same number to every step's score, which the softmax over steps ignores: its gradient
# is rounding noise, which Adam turns into steps of up to the learning rate (docs/SCALING.md). Step counters are whole numbers.
IGNORED = ("step_score.bias",)
BAR = 0.05  # a tensor may differ by at most this share of how far training moved it (from step 1 to STEPS)


def train(out: Path, device: str, steps: int, nproc: int = 1, extra: list[str] | None = None) -> Path:
    """The tiny seeded run of TINY (+ extra flags) for `steps` steps on `device` (nproc > 1: under torchrun); returns its folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*TINY, "--max-steps", str(steps), "--device", device, "--out", str(out), *(extra or [])]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else []
    r = subprocess.run([sys.executable, *launcher, "-m", "mmdemo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"training on {device} (x{nproc}) failed: {r.stderr[-2000:]}")
    return out


def weight_gap(a: Path, b: Path, start: Path) -> dict[str, float]:
    """Per weight tensor of two checkpoint folders: |a - b| / |a - start|, where start is the same run after one step
    (how far training moved it); step counters and IGNORED left out."""
    from safetensors.torch import load_file

    wa, wb, w0 = (load_file(str(Path(f) / "model.safetensors")) for f in (a, b, start))
    gaps = {}
    for name, x in wa.items():
        if name in IGNORED or not x.is_floating_point():
            continue
        moved = float((x.double() - w0[name].double()).norm())
        gaps[name] = float((x.double() - wb[name].double()).norm()) / max(moved, 1e-12)
    return gaps


def _worst(gaps: dict[str, float]) -> str:
    name = max(gaps, key=gaps.__getitem__)
    return f"{gaps[name]:.2e} (`{name}`)"


def _bench(device: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "mmdemo", "bench", "--device", device, "--steps", "5", "--runs", "100", "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"bench on {device} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def predict_gap() -> tuple[bool, float, str]:
    """(same answers, largest probability difference, MiniLM's device) for the default on the GPU against the CPU."""
    from mmdemo.inference import Predictor
    from mmdemo.tasks.sort_of_clevr import data as soc

    cpu, gpu = Predictor.load(device="cpu"), Predictor.load(device="cuda")
    same, gap = True, 0.0
    for scene in soc.generate("test", 4, seed=0):
        for q in scene.questions[:5]:
            a, b = cpu.predict(scene.image, q.text), gpu.predict(scene.image, q.text)
            same &= a.answer == b.answer
            gap = max(gap, *(abs(a.probs[k] - b.probs[k]) for k in a.probs))
    return same, gap, str(next(gpu.model.text.minilm.parameters()).device)


def run() -> list[str]:
    import torch

    started = time.time()
    rows = ["| check | CPU | GPU | result |", "|---|---|---|---|"]
    name = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with ThreadPoolExecutor(3) as pool:  # the CPU runs take one core each while the GPU run goes
            runs = [pool.submit(train, tmp / d, d.split("-")[0].replace("gpu", "cuda"), n) for d, n in (("cpu-1", 1), ("cpu", STEPS), ("gpu", STEPS))]
            start, cpu, gpu = (r.result() for r in runs)
        gaps = weight_gap(gpu, cpu, start)
        verdict = "within" if max(gaps.values()) <= BAR else "OVER"
        rows.append(f"| fp32 training, {STEPS} steps (tiny model): largest weight difference / movement | reference | {name} | "
                    f"{_worst(gaps)}: {verdict} the bar {BAR} |")
        if torch.cuda.device_count() >= 2:
            two = train(tmp / "gpu-2", "cuda", STEPS, nproc=2)
            gaps = weight_gap(two, gpu, start)
            rows.append(f"| 2 GPU processes (nccl) against 1, {STEPS} steps | - | 2 x {name} | {_worst(gaps)} |")
        else:
            rows.append("| 2 GPU processes (nccl) against 1 | - | - | not measured: one GPU |")
    same, gap, where = predict_gap()
    rows.append(f"| predict, shipped default, 20 questions | reference | {name} | answers {'the same' if same else 'DIFFER'}; "
                f"largest probability difference {gap:.1e}; MiniLM on {where} |")
    bench = {device: _bench(device) for device in ("cpu", "cuda")}
    for key, label in (("train_pairs_per_s", "training, questions/s (bench)"), ("predict_ms_p50", "predict p50, ms (bench)"),
                       ("predict_ms_p95", "predict p95, ms (bench)")):
        rows.append(f"| {label} | {bench['cpu'][key]} | {bench['cuda'][key]} | {bench['cpu'][key] and bench['cuda'][key] / bench['cpu'][key]:.2f}x |")
    rows.append(f"| (the whole check) | {bench['cpu']['threads']} threads | {name} | {time.time() - started:.0f} s |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON list (last line)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        sys.stderr.write("error: no CUDA GPU here: gpu_check measures docs/SCALING.md's GPU table on a GPU machine\n")
        return 2
    rows = run()
    print("\n".join(rows))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
