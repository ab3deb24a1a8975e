"""The real-image matching models and their baselines, trained with one budget; and README's table.

python -m mmdemo.experiments.photo_grid train --manifest data/openclipart/manifest.jsonl [--epochs E] [--feature-cache DIR]
python -m mmdemo.experiments.photo_grid evaluate --manifest data/openclipart/manifest.jsonl [--feature-cache DIR] [--photos M]
python -m mmdemo.experiments.photo_grid table
(--root DIR puts/reads the models elsewhere, e.g. another seed's: train --seed 1 --root /tmp/photos-seed1)

Trains, in order, into checkpoints/photos/: match (attention, the shipped photo model), sum, concat,
text-only and image-only (attention fusion with the other input blanked), and three ablations of the
attention model (without the pooled image, without the bridge prior, without both). All share the seed,
the split, the budget and the frozen encoders; the feature cache means the images are encoded once.
`evaluate` also measures every model on photos (the gallery, the eight photo cases, and with --photos a
GCompris photo manifest) beside the zero-shot label bridge; `table` prints both tables.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from mmdemo.checkpoint import METRICS, ROOT, write_metrics
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.results import pct

PHOTO_ROOT = ROOT / "photos"
MODELS = {  # folder -> (fusion, modality, attention options that differ from ATTENTION_OPTIONS)
    "match": ("attention", "both", {}),
    "sum": ("sum", "both", {}),
    "concat": ("concat", "both", {}),
    "text-only": ("attention", "text", {}),
    "image-only": ("attention", "image", {}),
    "attention-no-global": ("attention", "both", {"attention_global": False}),
    "attention-no-prior": ("attention", "both", {"bridge_attention": False}),
    "attention-plain": ("attention", "both", {"attention_global": False, "bridge_attention": False}),
}
BASE = ModelConfig(  # the shipped photo models read ahead (causal False): trained before the causal default
    text_encoder="minilm", image_encoder="efficientnet_lite0", label_bridge=True, image_size=224, grid=7, num_hops=1,
    labels=("match", "mismatch"), task="match", causal=False,
)
# The attention models (match and both baselines) also get the pooled image beside the attended regions, and
# the label bridge's word-region similarity as a prior on where each word looks (README: photo ablation).
ATTENTION_OPTIONS = {"attention_global": True, "bridge_attention": True}
ZERO_SHOT = "zero-shot.json"  # the label bridge alone, measured by `evaluate` (no checkpoint: nothing is trained)


def train_all(
    manifest: str,
    epochs: float,
    cache_dir: str | None,
    seed: int,
    only: list[str] | None,
    root: Path = PHOTO_ROOT,
) -> None:
    from mmdemo.tasks.matching.pairs import train_manifest

    for name, (fusion, modality, changes) in MODELS.items():
        if only and name not in only:
            continue
        cfg = replace(BASE, fusion=fusion, modality=modality)
        if cfg.has_region_attention:
            cfg = replace(cfg, **{**ATTENTION_OPTIONS, **changes})
        train_cfg = TrainConfig(out=str(root / name), epochs=epochs, lr=2e-3, batch_images=32, seed=seed, threads=1)
        _, metrics = train_manifest(manifest, "match", cfg, train_cfg, cache_dir=cache_dir)
        print(name, json.dumps(metrics), flush=True)


def evaluate_all(manifest: str, cache_dir: str | None, root: Path = PHOTO_ROOT, photos: str | None = None) -> None:
    """Re-measure every trained photo model on the validation split (metrics.json keeps the train fields);
    on photos too (the gallery, and with `photos` a GCompris manifest: README "From clip art to photos"); and
    the label bridge alone (zero-shot), written to ROOT/zero-shot.json."""
    import torch

    from mmdemo.checkpoint import load_checkpoint
    from mmdemo.tasks.matching.manifest import read_manifest, split_rows
    from mmdemo.tasks.matching.pairs import PairData, evaluate_match
    from mmdemo.tasks.matching.photo_eval import ZeroShotBridge, gallery_metrics, photo_cases

    rows = read_manifest(manifest, "match")
    train_rows, val_rows = split_rows(rows)
    photo_rows = None
    if photos:  # only photos the models were not trained on (a manifest may include them),
        # recognised by their bytes (file names repeat across sources: bee.png is clip art and a photo)
        import hashlib

        def digest(path: Path) -> str:
            return hashlib.sha1(path.read_bytes()).hexdigest()

        trained = {digest(p) for p in {r.image for r in train_rows}}
        photo_rows = [r for r in read_manifest(photos, "match") if digest(r.image) not in trained]
    cpu = torch.device("cpu")

    def measure(model) -> dict:
        out = evaluate_match(model, PairData(val_rows, model, cache_dir, progress=False), val_rows, cpu)
        out.update(gallery_metrics(model))
        out.update(photo_cases(model))
        if photo_rows is not None:
            found = evaluate_match(model, PairData(photo_rows, model, cache_dir, progress=False), photo_rows, cpu)
            out.update({f"photos_{k}": v for k, v in found.items()})
        return out

    for name in MODELS:
        folder = root / name
        if not (folder / METRICS).is_file():
            continue
        model, _ = load_checkpoint(folder, "cpu")
        metrics = json.loads((folder / METRICS).read_text())
        metrics.update(measure(model))
        write_metrics(folder, metrics)
        print(name, json.dumps(metrics), flush=True)
    zero_shot = {k: v for k, v in measure(ZeroShotBridge(BASE)).items() if not k.endswith("accuracy") and not k.startswith("photo_cases")}  # uncalibrated: no threshold
    (root / ZERO_SHOT).write_text(json.dumps(zero_shot, indent=2) + "\n")
    print("zero-shot", json.dumps(zero_shot), flush=True)


def fusion_label(model: dict) -> str:
    """How a photo model fuses, from its config.json: "attention + pooled image + bridge prior"."""
    parts = [model["fusion"]]  # a config with either option has region attention (ModelConfig checks it)
    parts += ["pooled image"] * bool(model.get("attention_global")) + ["bridge prior"] * bool(model.get("bridge_attention"))
    return " + ".join(parts)


def photo_table(root: Path = PHOTO_ROOT) -> str:
    """Markdown: held-out accuracy, ROC AUC and retrieval recall of every photo model."""
    rows = ["| model | fusion | inputs | accuracy | ROC AUC | R@1 / 100 | R@5 / 100 | train time |", "|---|---|---|---|---|---|---|---|"]
    for name, (fusion, modality, _) in MODELS.items():
        path = root / name / METRICS
        if not path.is_file():
            rows.append(f"| {name} | {fusion} | {modality} | (not trained) | | | | |")
            continue
        m = json.loads(path.read_text())
        model = json.loads((root / name / "config.json").read_text())["model"]
        rows.append(
            f"| {name} | {fusion_label(model)} | {'text + image' if modality == 'both' else modality + ' only'} | {pct(m.get('accuracy'))} | "
            f"{_auc(m.get('roc_auc'))} | {pct(m.get('recall_at_1'))} | {pct(m.get('recall_at_5'))} | {m.get('train_seconds', 0) / 60:.1f} min |"
        )
    return "\n".join(rows)


def _auc(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def photo_domain_table(root: Path = PHOTO_ROOT) -> str:
    """Markdown: the same models on photos (GCompris photos, the gallery, the eight photo cases), and zero-shot."""
    rows = [
        "| model | GCompris photos: accuracy | ROC AUC | R@1 / pool | gallery: ROC AUC | R@1 / 12 | photo cases |",
        "|---|---|---|---|---|---|---|",
    ]

    def cells(m: dict) -> str:
        cases = f"{m['photo_cases_right']} / {m['photo_cases']}" if "photo_cases" in m else "n/a"
        pool = f" / {m['photos_retrieval_pool']}" if "photos_retrieval_pool" in m else ""
        return (
            f"{pct(m.get('photos_accuracy'))} | {_auc(m.get('photos_roc_auc'))} | {pct(m.get('photos_recall_at_1'))}{pool} | "
            f"{_auc(m.get('gallery_roc_auc'))} | {pct(m.get('gallery_recall_at_1'))} | {cases}"
        )

    for name in MODELS:
        path = root / name / METRICS
        if path.is_file() and "gallery_roc_auc" in (m := json.loads(path.read_text())):
            rows.append(f"| {name} | {cells(m)} |")
    if (root / ZERO_SHOT).is_file():
        rows.append(f"| zero-shot label bridge (nothing trained) | {cells(json.loads((root / ZERO_SHOT).read_text()))} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.photo_grid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the photo models")
    t.add_argument("--manifest", required=True, help="image-text manifest (python -m mmdemo.experiments.data.openclipart writes one)")
    t.add_argument("--epochs", type=float, default=8.0, help="epochs for every model (default %(default)s)")
    t.add_argument("--feature-cache", default=None, help="folder for cached frozen image features")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--only", nargs="*", choices=list(MODELS), help="train only these")
    e = sub.add_parser("evaluate", help="re-measure the trained photo models on the validation split")
    e.add_argument("--manifest", required=True)
    e.add_argument("--feature-cache", default=None)
    e.add_argument("--photos", default=None, help="a photo manifest to measure on as well (python -m mmdemo.experiments.data.gcompris writes one)")
    tab = sub.add_parser("table", help="print the results table")
    for p in (t, e, tab):
        p.add_argument("--root", type=Path, default=PHOTO_ROOT, help="folder of the photo models (default %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "train":
        train_all(args.manifest, args.epochs, args.feature_cache, args.seed, args.only, args.root)
    elif args.command == "evaluate":
        evaluate_all(args.manifest, args.feature_cache, args.root, args.photos)
    print(photo_table(args.root))
    print()
    print(photo_domain_table(args.root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
