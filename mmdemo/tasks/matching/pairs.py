"""Training on your own data: `python -m mmdemo train --manifest FILE --task classify|match`.

Frozen features (EfficientNet-Lite0 regions, MiniLM token states) are computed once per distinct image
and text and cached, so every epoch runs at the speed of the small trained part (projections, RNN,
fusion, head). `match` builds its negatives itself: every image is paired with its own text (match) and
with the text of another image, from another group when the manifest has groups (mismatch). Each image
and each text therefore appears about as often in a match as in a mismatch, so neither alone predicts
the label: the text-only and image-only baselines (`--modality text|image`) sit at chance by design.

Under torchrun each rank encodes its shard of the distinct images and texts and all ranks then share
them (mmdemo.distributed), and each takes its shard of every step's pairs; the loop is mmdemo.train.fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mmdemo import distributed
from mmdemo.checkpoint import write_metrics
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.model import FusionRNN, ModelOutput
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.resume import identity
from mmdemo.tasks.matching.manifest import MATCH_LABELS, Row, read_manifest, split_rows
from mmdemo.train import data_path, fit, save_trained, training_device


class PairData:
    """Distinct images and texts of a manifest, with their frozen features, indexed by position."""

    def __init__(self, rows: list[Row], model: FusionRNN, cache_dir: str | None, progress: bool) -> None:
        from mmdemo.processing import load_image, prepare_image
        from mmdemo.text import tokenize

        cfg = self.model_cfg = model.cfg
        self.images = sorted({r.image for r in rows})
        self.texts = sorted({r.text for r in rows})
        self.image_pos = {p: i for i, p in enumerate(self.images)}
        self.text_pos = {t: i for i, t in enumerate(self.texts)}
        several = distributed.world().size > 1  # then each rank encodes its shard, and all share all
        mine = distributed.shard(len(self.images))
        pixels = [prepare_image(load_image(p), cfg.image_size) for p in tqdm(self.images[mine], desc="images", disable=not progress)]
        self.pretrained = cfg.image_encoder != "cnn"
        if self.pretrained:
            from mmdemo.model.pretrained import FEATURE_DIM, GRID, FeatureCache

            cache = FeatureCache(cache_dir, max_items=0)
            feats = [cache.get(pixels[i : i + 64]) for i in tqdm(range(0, len(pixels), 64), desc="image features", disable=not progress)]
            local = torch.cat(feats).half() if feats else torch.zeros((0, FEATURE_DIM, GRID, GRID), dtype=torch.half)
            self.features = distributed.all_rows(local)  # (N, 1280, 7, 7), half precision as cached
            self.cache_computed = int(distributed.all_reduce_sum(torch.tensor(cache.computed)))
        else:
            size = cfg.image_size
            local = torch.from_numpy(np.stack(pixels)) if pixels else torch.zeros((0, size, size, 3), dtype=torch.uint8)
            self.pixels = images_to_tensor(distributed.all_rows(local).numpy())  # (N, 3, S, S)
            self.cache_computed = 0
        self.token_ids, _ = tokenize(self.texts, cfg.max_tokens)
        text = model.text
        if text.kind == "minilm":  # warm the contextual cache once: then training never runs MiniLM
            text.cache_size = max(text.cache_size, len(self.texts) + 1024)
            mine = distributed.shard(len(self.texts))
            width = max(len(ids) for ids in self.token_ids)
            local_states = []  # (n, width, 384) each, to share with the other ranks
            for i in tqdm(range(mine.start, mine.stop, 256), desc="text features", disable=not progress):
                ids, mask = pad_token_ids(self.token_ids[i : min(i + 256, mine.stop)])
                states = text.frozen_features(ids, mask)  # (n, T, 384)
                if several:
                    local_states.append(F.pad(states, (0, 0, 0, width - states.shape[1])))
            if several:
                from mmdemo.model.encoders import MINILM_DIM

                local = torch.cat(local_states) if local_states else torch.zeros((0, width, MINILM_DIM))
                for first, shared in distributed.gather_rows(local):
                    ids, mask = pad_token_ids(self.token_ids[first : first + len(shared)])
                    text.remember(ids, mask, shared)

    def memory(self, model: FusionRNN, image_idx: list[int], device: torch.device):
        if self.pretrained:
            feats = self.features[image_idx].float().to(device)
            return model.encode_features(feats)
        return model.encode_images(self.pixels[image_idx].to(device))


def match_pairs(rows: list[Row], data: PairData, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(image, text, label) triples: each row as a match, plus one mismatch with another row's text."""
    out = []
    n = len(rows)
    order = rng.permutation(n)
    for k, r in enumerate(rows):
        out.append((data.image_pos[r.image], data.text_pos[r.text], 0))
        for attempt in range(20):
            other = rows[order[(k + 1 + attempt) % n]] if attempt == 0 else rows[int(rng.integers(n))]
            if other.text != r.text and other.image != r.image and (r.group is None or other.group != r.group or attempt >= 10):
                out.append((data.image_pos[r.image], data.text_pos[other.text], 1))
                break
    return out


def classify_pairs(rows: list[Row], data: PairData, labels: tuple[str, ...]) -> list[tuple[int, int, int]]:
    return [(data.image_pos[r.image], data.text_pos[r.text], labels.index(r.label)) for r in rows]  # type: ignore[arg-type]


def forward_pairs(model: FusionRNN, data: PairData, pairs: list[tuple[int, int, int]], device: torch.device, targets: bool = True):
    images = sorted({p[0] for p in pairs})
    where = {img: k for k, img in enumerate(images)}
    memory = data.memory(model, images, device)
    ids, mask = pad_token_ids([data.token_ids[p[1]] for p in pairs])
    index = torch.tensor([where[p[0]] for p in pairs], device=device)
    y = torch.tensor([p[2] for p in pairs], device=device) if targets else None
    return model.answer(memory, ids.to(device), mask.to(device), index, y)


class PairStep(nn.Module):
    """forward_pairs as a module's forward: the entry point DDP must see (it wraps forward, not other methods)."""

    def __init__(self, model: FusionRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, data: PairData, pairs: list[tuple[int, int, int]], device: torch.device):
        return forward_pairs(self.model, data, pairs, device)


@torch.inference_mode()
def scores(model: FusionRNN, data: PairData, pairs: list[tuple[int, int, int]], device: torch.device, batch: int = 512) -> np.ndarray:
    """(P, C) class probabilities for each pair."""
    model.eval()
    out = [forward_pairs(model, data, pairs[i : i + batch], device, targets=False).logits.float().softmax(-1).cpu() for i in range(0, len(pairs), batch)]
    return torch.cat(out).numpy()


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y_true.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def expected_recall(k: int, better: int | np.ndarray, tied: int | np.ndarray) -> float | np.ndarray:
    """Recall@k of the right item when `better` items score above it and `tied` others score the same,
    ties broken at random (so a constant scorer gets k / pool)."""
    return np.clip((k - np.asarray(better)) / (np.asarray(tied) + 1), 0.0, 1.0)


def evaluate_match(model: FusionRNN, data: PairData, rows: list[Row], device: torch.device, pool: int = 100, queries: int = 300) -> dict:
    """Accuracy and ROC AUC on balanced val pairs; recall@1/@5 of each text's own image among `pool` images."""
    pairs = match_pairs(rows, data, np.random.default_rng(12345))
    p = scores(model, data, pairs, device)[:, 0]  # P(match)
    y = np.array([1 - lab for _, _, lab in pairs])  # 1 = match
    metrics = {"accuracy": float(((p > 0.5) == y).mean()), "roc_auc": roc_auc(y, p), "val_pairs": len(pairs)}
    rng = np.random.default_rng(54321)
    images = sorted({data.image_pos[r.image] for r in rows})
    if len(images) >= 2:
        ranks = []
        for r in [rows[i] for i in rng.permutation(len(rows))[:queries]]:
            own = data.image_pos[r.image]
            others = [i for i in images if i != own]
            cand = [own] + [int(i) for i in rng.choice(others, size=min(pool - 1, len(others)), replace=False)]
            s = scores(model, data, [(img, data.text_pos[r.text], 0) for img in cand], device)[:, 0]
            ranks.append((int((s > s[0]).sum()), int((s == s[0]).sum()) - 1))  # (better, tied with own)
        metrics["retrieval_pool"] = min(pool, len(images))
        for k in (1, 5):  # expected recall@k when ties are broken at random (a constant scorer gets k / pool)
            metrics[f"recall_at_{k}"] = float(np.mean([expected_recall(k, better, tied) for better, tied in ranks]))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def evaluate_classify(model: FusionRNN, data: PairData, rows: list[Row], device: torch.device) -> dict:
    labels = model.cfg.labels
    pairs = classify_pairs(rows, data, labels)
    p = scores(model, data, pairs, device)
    return {"accuracy": round(float((p.argmax(-1) == np.array([q[2] for q in pairs])).mean()), 4), "val_rows": len(pairs)}


class PairTask:
    """Manifest pairs as mmdemo.train.fit wants them: each epoch draws its pairs (match: new mismatches) and their order."""

    unit, log_decay, report_accuracy = "pairs", 0.95, False

    def __init__(self, rows: list[Row], data: PairData, task: str, labels: tuple[str, ...], cfg: TrainConfig, device: torch.device) -> None:
        self.rows, self.data, self.task, self.labels, self.device = rows, data, task, labels, device
        self.label = f"{task} {data.model_cfg.fusion}-{data.model_cfg.cell}"
        self.per_step = max(8, cfg.batch_images * 4)  # pairs per step
        self.epoch_items = len(rows) * (2 if task == "match" else 1)

    def module(self, model: FusionRNN) -> nn.Module:
        return PairStep(model)

    def warmup(self, total: int) -> int:
        return min(100, total // 10 + 1)

    def epoch(self, rng: np.random.Generator) -> list[tuple[int, int, int]]:
        pairs = match_pairs(self.rows, self.data, rng) if self.task == "match" else classify_pairs(self.rows, self.data, self.labels)
        return [pairs[i] for i in rng.permutation(len(pairs))]

    def batch(self, chunk: list[tuple[int, int, int]], step: int) -> tuple[list, list, float]:
        """(this rank's pairs, the pairs it runs, its share of the global mean: exactly 1.0 with one process)."""
        mine = chunk[distributed.shard(len(chunk))]
        # A rank left without pairs by a tiny last step computes one with weight 0 (DDP needs every rank's backward).
        return mine, mine or chunk[:1], len(mine) * distributed.world().size / len(chunk)

    def loss(self, runner: nn.Module, batch: tuple[list, list, float]) -> tuple[ModelOutput, torch.Tensor]:
        _, run, share = batch
        out = runner(self.data, run, self.device)
        return out, out.loss * share

    def totals(self, out: ModelOutput, batch: tuple[list, list, float]) -> tuple[torch.Tensor, torch.Tensor]:
        mine = batch[0]
        return out.logits[: len(mine)], torch.tensor([p[2] for p in mine], device=self.device, dtype=torch.long)


def train_manifest(
    manifest: str | Path,
    task: str,
    base_cfg: ModelConfig,
    cfg: TrainConfig,
    labels: tuple[str, ...] | None = None,
    val_fraction: float = 0.1,
    cache_dir: str | None = None,
    progress: bool = True,
) -> tuple[FusionRNN, dict]:
    """Validate, split, cache features, train, write checkpoint + metrics.json (cfg.evaluate) into cfg.out."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rows = read_manifest(manifest, task, labels)
    train_rows, val_rows = split_rows(rows, val_fraction)
    train_rows = [r for r in train_rows for _ in range(r.repeat)]  # the manifest's `repeat` oversamples rows
    if task == "classify":
        labels = labels or tuple(sorted({r.label for r in rows}))  # type: ignore[type-var]
    else:
        labels = MATCH_LABELS
    model_cfg = replace(base_cfg, labels=tuple(labels), task=task)
    device = training_device(cfg)
    torch.manual_seed(cfg.seed)
    model = FusionRNN(model_cfg).to(device)
    manifest_sha1 = hashlib.sha1(Path(manifest).read_bytes()).hexdigest()
    run = identity(model_cfg, cfg, task=task, manifest_sha1=manifest_sha1, val_fraction=val_fraction)
    main = distributed.is_main()
    with distributed.session(device):
        data = PairData(rows, model, cache_dir, progress and main)
        pair_task = PairTask(train_rows, data, task, tuple(labels), cfg, device)
        result = fit(model, pair_task, cfg, run, device, progress)
    if not main:
        return model, {}
    save_trained(model, cfg, result, device, about={"manifest": data_path(manifest), "task": task},
                 feature_cache={"images_encoded": data.cache_computed, "distinct_images": len(data.images)})
    if not cfg.evaluate:
        return model, {}
    metrics = evaluate_match(model, data, val_rows, device) if task == "match" else evaluate_classify(model, data, val_rows, device)
    metrics.update(train_seconds=round(result.seconds, 1), train_rows=len(train_rows), val_rows=len(val_rows), modality=model_cfg.modality, fusion=model_cfg.fusion)
    write_metrics(cfg.out, metrics)
    return model, metrics
