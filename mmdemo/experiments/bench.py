"""Benchmarks: training throughput (real path vs the seed's per-question loop) and predict latency (typed or spoken)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mmdemo.checkpoint import DEFAULT, read_config
from mmdemo.config import ModelConfig, spoken_defaults
from mmdemo.inference import Predictor
from mmdemo.model import FusionRNN, pick_device
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch, SpokenBatch, SpokenQuestions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_throughput(cfg: ModelConfig, device: torch.device, steps: int, naive: bool, images: int = 32, spoken_data: str | Path = "data/spoken") -> float:
    """Question-answer pairs per second of full training steps (forward, backward, Adam).

    real: each image is encoded once for its 20 questions, frozen text states come from the cache.
    naive: the seed article's loop, where every (image, question) pair is a sample of its own, so the
    image CNN and the frozen text encoder run again for every question.
    Spoken models (real path only): 32 images x SPOKEN questions_per_image utterances from the training pool.
    """
    torch.manual_seed(0)
    model = FusionRNN(cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    if cfg.question_input == "audio":
        batch = spoken_train_batch(cfg, images, spoken_data).to(device)
    else:
        samples = soc.generate("train", images, seed=123, wording="train")
        batch = QuestionBatch(np.stack([s.image for s in samples]), [s.questions for s in samples], cfg).to(device)

    def step() -> None:
        if naive:
            model.text.clear_cache()
            out = model(batch.images[batch.image_index], batch.question, batch.question_mask, None, batch.targets)
        else:
            out = model(batch.images, batch.question, batch.question_mask, batch.image_index, batch.targets)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    step()  # warm-up (and, on the real path, fills the text cache as the first epoch would)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * len(batch.targets) / (time.perf_counter() - start)


def spoken_train_batch(cfg: ModelConfig, images: int, spoken_data: str | Path) -> SpokenBatch:
    """A training batch of spoken questions: the first two shards of the training pool (cached, or made now)."""
    from mmdemo.tasks.sort_of_clevr import spoken

    pool = spoken.load_pool(spoken.plan_train(2 * spoken.SHARD), spoken_data, "train", spoken.feature_settings(cfg), progress=False)
    samples = soc.generate("train", images, seed=123)
    source = SpokenQuestions(pool, cfg, spoken_defaults()["questions_per_image"])
    return source.batch(np.stack([s.image for s in samples]), [s.scene for s in samples], np.random.default_rng(0))


BENCH_AUDIO_SECONDS = 3.0  # spoken latency is measured on questions padded or cut to this length


def spoken_inputs(count: int = 20) -> list[tuple[np.ndarray, tuple[int, np.ndarray]]]:
    """(image, (16000, samples)) pairs: canonical questions in training voices (the val split's renderings), each exactly
    BENCH_AUDIO_SECONDS long: latency depends on the length, not on the voice."""
    from mmdemo.tasks.sort_of_clevr import spoken

    samples = soc.generate("val", count, seed=7)
    plan = spoken.plan_questions([soc.Sample(s.index, s.scene, s.image, s.questions[:1]) for s in samples], "val")
    out = []
    for s, u in zip(samples, plan):
        x, _ = spoken.render(u)
        n = int(BENCH_AUDIO_SECONDS * 16000)
        out.append((s.image, (16000, np.pad(x, (0, max(0, n - len(x))))[:n])))
    return out


PHOTO_SENTENCES = ("a cat", "a cup of coffee", "a rocket on the launch pad", "an astronaut", "a red motorcycle", "a man with a camera")


def predict_inputs(predictor: Predictor) -> list[tuple[object, str]]:
    """(image, text) pairs for latency: generated scenes for Sort-of-CLEVR models, photos for the others."""
    if predictor.cfg.question_input == "audio":
        return spoken_inputs()
    if predictor.cfg.task == "sort-of-clevr":
        return [(s.image, q.text) for s in soc.generate("val", 20, seed=7) for q in s.questions[:1]]
    from mmdemo.photos import gallery

    return [(photo.pixels, text) for photo in gallery() for text in PHOTO_SENTENCES]


def predict_latency(predictors: list[Predictor], runs: int) -> list[tuple[float, float]]:
    """p50, p95 of one predict call in ms for each predictor, caches cleared each time (a new image and
    question every call). Calls alternate between the predictors, so machine noise falls on all alike."""
    inputs = [predict_inputs(p) for p in predictors]
    timings: list[list[float]] = [[] for _ in predictors]
    for i in range(runs + 5):
        for k, predictor in enumerate(predictors):
            image, question = inputs[k][i % len(inputs[k])]
            predictor.clear_caches()
            start = time.perf_counter()
            predictor.predict(image, question)
            _sync(predictor.device)
            if i >= 5:
                timings[k].append((time.perf_counter() - start) * 1000)
    return [(float(np.percentile(t, 50)), float(np.percentile(t, 95))) for t in timings]


def _shown(folder: Path) -> str:
    """A checkpoint folder as given, relative to the working directory when it is inside it."""
    here = Path.cwd().resolve()
    return str(folder.resolve().relative_to(here)) if folder.resolve().is_relative_to(here) else str(folder)


def run_bench(
    checkpoint: str | Path | None, device_name: str, steps: int, runs: int, baseline: str | Path | None = None,
    spoken_data: str | Path = "data/spoken",
) -> dict:
    """Training throughput and predict latency of one checkpoint; with baseline, that checkpoint's predict
    latency measured in the same run (interleaved) and the ratio of the two p50s. Spoken checkpoints are
    timed on BENCH_AUDIO_SECONDS questions and train on utterances from spoken_data."""
    device = pick_device(device_name)
    folder = Path(checkpoint) if checkpoint else DEFAULT
    predictors = [Predictor.load(folder, device=device_name)]
    if baseline is not None:
        predictors.append(Predictor.load(baseline, device=device_name))
    cfg = ModelConfig.from_dict(read_config(folder)["model"])
    latencies = predict_latency(predictors, runs)
    (p50, p95) = latencies[0]
    result: dict = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "checkpoint": _shown(folder),
        "task": cfg.task,
    }
    if cfg.question_input == "audio":  # no frozen encoder to re-run: the seed's loop only re-runs the CNN
        real = train_throughput(cfg, device, steps, naive=False, spoken_data=spoken_data)
        result.update(question_input="audio", train_pairs_per_s=round(real, 1), train_speedup=None, predict_audio_seconds=BENCH_AUDIO_SECONDS)
    elif cfg.task == "sort-of-clevr":  # manifest models train on cached frozen features: no naive path to compare
        real = train_throughput(cfg, device, steps, naive=False)
        naive = train_throughput(cfg, device, max(1, steps // 2), naive=True)
        result.update(train_pairs_per_s=round(real, 1), naive_train_pairs_per_s=round(naive, 1), train_speedup=round(real / naive, 2))
    else:
        result["train_speedup"] = None
    result.update(predict_ms_p50=round(p50, 2), predict_ms_p95=round(p95, 2))
    if baseline is not None:
        b50, b95 = latencies[1]
        result.update(
            baseline_checkpoint=_shown(Path(baseline)),
            baseline_predict_ms_p50=round(b50, 2),
            baseline_predict_ms_p95=round(b95, 2),
            predict_p50_ratio=round(p50 / b50, 2),
        )
    return result
