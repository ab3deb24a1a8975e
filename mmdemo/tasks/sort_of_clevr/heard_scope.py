"""Heard scope: did a recording ask one of the six kinds of question? (The spoken twin of scope.py.)

The heard head names a colour and a kind for whatever it is given, and a sentence that names a colour ("my car
is red") is heard as "what shape is it" at 91-100% (`offtask check`), so no threshold on the heard head can
refuse it. This detector reads the whole of what the spoken model heard, with the model frozen: its RNN states
(at the last step, their mean and their maximum over the steps) and the heard head's logits (at the last step
and their mean), 220 numbers; a small classifier on them (a logistic regression or one hidden layer, chosen on
validation) gives the probability that the recording was a task question. Under the threshold the app asks for
one of the six kinds instead of answering.

    python -m mmdemo.tasks.sort_of_clevr.heard_scope fit [--checkpoint DIR]   # writes heard-scope.{safetensors,json}

Data, all in training voices (spoken.voices("train")), with the training pool's augmentation ("mixed"):
- fit: the training pool's first POSITIVES questions (cached by `train`), and scope_data.TRAIN_OUT (Latin script
  only: the synthesizers read English) with scope_data.SPOKEN_TRAIN_OUT, voiced NEGATIVES times;
- the detector (of CANDIDATES, the one that catches most off-task clips at its threshold): the "val" split's
  questions (hearing.FIT_IMAGES scenes, as for the unsure thresholds), and scope_data.VAL_OUT with SPOKEN_VAL_OUT
  voiced VAL_NEGATIVES times;
- the threshold: the same questions in "valwarp" (the training voices moved outside the training range, the proxy
  for new voices: a new voice pays the price of a threshold, so it is set where new voices are), FLAGGED of them
  asked again;
- measured only: `offtask check` (offtask.SENTENCES in held-out voices; no sentence of it is in these banks) and
  `evaluate` (held-out voices: how many task questions it wrongly asks again).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmdemo.tasks.sort_of_clevr import data as soc

WEIGHTS, REPORT = "heard-scope.safetensors", "heard-scope.json"
POSITIVES = 8000  # training-pool questions (its first shards)
NEGATIVES = 4000  # voiced off-task sentences for the fit
VAL_NEGATIVES = 1000  # ... and for the threshold
FLAGGED = 0.01  # the threshold asks again on this share of the valwarp questions (the proxy for new voices)
CANDIDATES = ((0, 1e-2), (0, 1e-1), (64, 1e-2), (64, 1e-1))  # (hidden units, weight decay): chosen on val (off-task caught)
EPOCHS = 60
STREAMS = {"offtask-train": 20, "offtask-val": 21}  # rng streams apart from spoken.SPLIT_STREAMS


def summarise(states: torch.Tensor, heard: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) RNN states, (B, T, C) heard logits, (B, T) real steps -> (B, 3H + 2C): the states at the last
    step, their mean and maximum over the steps; the heard logits at the last step and their mean."""
    m = mask.unsqueeze(-1).to(states.dtype)
    n = mask.sum(1).clamp(min=1)  # (B,)
    rows = torch.arange(states.shape[0], device=states.device)
    last = states[rows, n - 1]
    mean = (states * m).sum(1) / n[:, None]
    top = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    heard_last = heard[rows, n - 1]
    heard_mean = (heard * m).sum(1) / n[:, None]
    return torch.cat([last, mean, top, heard_last, heard_mean], dim=-1).float()


class HeardScope(nn.Module):
    """On standardised summaries, a logistic regression (hidden 0) or one hidden ReLU layer: the probability that
    a recording asked a task question."""

    def __init__(self, dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1)) if hidden else nn.Sequential(nn.Linear(dim, 1))

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) summaries -> (B,) probability of a task question."""
        return torch.sigmoid(self.logit(x))


def load_scope(folder: str | Path) -> HeardScope | None:
    """The checkpoint's fitted detector (its threshold is Thresholds.scope), or None when it has none."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    state = load_file(str(path))
    scope = HeardScope(state["mean"].numel(), state["net.0.weight"].shape[0] if "net.3.weight" in state else 0)
    scope.load_state_dict(state)
    return scope.eval()


# -------------------------------------------------------------------------------------------- data


def _normal(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower().replace("color", "colour") if ch.isalpha() or ch == " ").split())


def bank(split: str) -> list[tuple[str, str]]:
    """(category, sentence) of the split's off-task bank ("offtask-train" | "offtask-val"): the typed detector's
    bank in Latin script and the spoken additions, every template filled with every colour and noun; any sentence
    equal to one of the check's (offtask.SENTENCES), or for val to one of train's, is dropped."""
    from mmdemo.tasks.sort_of_clevr import scope_data
    from mmdemo.tasks.sort_of_clevr.offtask import SENTENCES
    from mmdemo.tasks.sort_of_clevr.scope import expand

    typed, spoken = {"offtask-train": (scope_data.TRAIN_OUT, scope_data.SPOKEN_TRAIN_OUT),
                     "offtask-val": (scope_data.VAL_OUT, scope_data.SPOKEN_VAL_OUT)}[split]
    held = {_normal(t) for _, t in SENTENCES}  # the check's
    if split == "offtask-val":  # and the fit's
        held |= {_normal(t) for _, t in bank("offtask-train")}
    rows = []
    for source in (typed, spoken):
        for category, texts in expand(source, tuple(dict.fromkeys(soc.NOUNS))).items():
            rows += [(category, t) for t in texts if t.isascii() and _normal(t) and _normal(t) not in held]
    return rows


def plan(split: str, count: int, seed: int = 0) -> list:
    """count off-task utterances of the split's bank (categories in turn, sentences drawn in each), each in a
    training voice with the training pool's augmentation."""
    from mmdemo.tasks.sort_of_clevr import spoken

    rows = bank(split)
    categories = list(dict.fromkeys(c for c, _ in rows))
    by_category = {c: [t for k, t in rows if k == c] for c in categories}
    voice_lists = {synth: spoken.voices("train", synth) for synth in spoken.SYNTHS}
    out = []
    for i in range(count):
        rng = np.random.default_rng([STREAMS[split], seed, i])
        category = categories[i % len(categories)]
        text = by_category[category][int(rng.integers(len(by_category[category])))]
        synth = spoken.SYNTHS[int(rng.choice(len(spoken.SYNTHS), p=spoken.TRAIN_SHARE))]
        out.append(spoken.draw_utterance(text, "offtask", "", False, category, synth, voice_lists[synth], rng, 0.0))
    return out


@torch.inference_mode()
def summaries(model, pool, images: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """(n, D) summaries of every utterance of the pool, utterance i heard with images[i] (the frozen model)."""
    from mmdemo.processing import images_to_tensor

    model.eval()
    out = []
    for start in range(0, len(pool), batch):
        idx = range(start, min(start + batch, len(pool)))
        frames = [torch.from_numpy(pool.frames(i).astype(np.float32)) for i in idx]
        length = max(len(f) for f in frames)
        x = torch.zeros(len(frames), length, frames[0].shape[1])
        mask = torch.zeros(len(frames), length, dtype=torch.bool)
        for j, f in enumerate(frames):
            x[j, : len(f)], mask[j, : len(f)] = f, True
        o = model(images_to_tensor(np.stack([images[i] for i in idx])), x, mask)
        out.append(summarise(o.states, o.heard, o.step_mask).numpy())
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------- fit


def train_scope(x: np.ndarray, y: np.ndarray, hidden: int, weight_decay: float, epochs: int = EPOCHS) -> HeardScope:
    """A HeardScope fitted to x (summaries), y (1: task question) with class-balanced cross-entropy (AdamW, batches of 256)."""
    torch.manual_seed(0)
    scope = HeardScope(x.shape[1], hidden)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    scope.mean.copy_(xt.mean(0))
    scope.std.copy_(xt.std(0).clamp(min=1e-4))
    weight = torch.where(yt > 0, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
    opt = torch.optim.AdamW(scope.net.parameters(), lr=1e-3, weight_decay=weight_decay)
    scope.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 256):
            b = order[start : start + 256]
            loss = (nn.functional.binary_cross_entropy_with_logits(scope.logit(xt[b]), yt[b], reduction="none") * weight[b]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return scope.eval()


def fit(folder: Path, spoken_data: str, workers: int = 0, progress: bool = True) -> dict:
    """Voice the banks, summarise what the frozen spoken model hears, fit the CANDIDATES, set each one's threshold on
    valwarp (FLAGGED of its task questions asked again) and keep the one that catches most of val's off-task clips
    there; write WEIGHTS and REPORT."""
    from safetensors.torch import save_file

    from mmdemo.checkpoint import load_checkpoint
    from mmdemo.tasks.sort_of_clevr import spoken
    from mmdemo.tasks.sort_of_clevr.hearing import FIT_IMAGES

    started = time.time()
    model, _ = load_checkpoint(folder, torch.device("cpu"))
    if model.cfg.question_input != "audio" or model.heard is None:
        raise ValueError(f"{folder} is not a spoken checkpoint with a heard head")
    settings = spoken.feature_settings(model.cfg)
    train_scenes = [s.image for s in soc.generate("train", 200)]
    val_samples = soc.generate("val", FIT_IMAGES)
    val_scenes = [s.image for s in val_samples]

    def voiced(utterances: list, split: str):
        return spoken.load_pool(utterances, spoken_data, split, settings, workers, progress)

    task_train = voiced(spoken.plan_train(POSITIVES), "train")  # the pool's first shards: cached by `train`
    off_train = voiced(plan("offtask-train", NEGATIVES), "offtask-train")
    task_val = voiced(spoken.plan_questions(val_samples, "val"), "val")
    task_warp = voiced(spoken.plan_questions(val_samples, "valwarp"), "valwarp")
    off_val = voiced(plan("offtask-val", VAL_NEGATIVES), "offtask-val")
    per_val = len(val_samples[0].questions)
    val_images = [val_scenes[i // per_val] for i in range(len(task_val))]
    x_train = np.concatenate([summaries(model, task_train, [train_scenes[i % len(train_scenes)] for i in range(len(task_train))]),
                              summaries(model, off_train, [train_scenes[(7 * i + 3) % len(train_scenes)] for i in range(len(off_train))])])
    y_train = np.concatenate([np.ones(len(task_train)), np.zeros(len(off_train))])
    x_val = np.concatenate([summaries(model, task_val, val_images),
                            summaries(model, off_val, [val_scenes[i % len(val_scenes)] for i in range(len(off_val))])])
    y_val = np.concatenate([np.ones(len(task_val)), np.zeros(len(off_val))])
    x_warp = summaries(model, task_warp, val_images)

    def probability(scope: HeardScope, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return scope.probability(torch.from_numpy(x).float()).numpy()

    def operating_point(scope: HeardScope) -> tuple[float, float]:
        """(threshold: FLAGGED of valwarp's questions under it, share of val's off-task clips under it)."""
        threshold = float(np.quantile(probability(scope, x_warp), FLAGGED))
        return threshold, float((probability(scope, x_val)[y_val == 0] < threshold).mean())

    tried = {}
    for hidden, decay in CANDIDATES:
        scope = train_scope(x_train, y_train, hidden, decay)
        tried[(hidden, decay)] = (operating_point(scope)[1], scope)
    hidden, decay = max(tried, key=lambda k: tried[k][0])  # the first of equals: the simplest
    scope = tried[(hidden, decay)][1]
    threshold = operating_point(scope)[0]
    p_train, p_val, p_warp = probability(scope, x_train), probability(scope, x_val), probability(scope, x_warp)
    categories = np.array([u.template for u in off_val.utterances])

    def share(flags: np.ndarray) -> float:
        return round(float(flags.mean()), 4)

    report = {
        "threshold": round(threshold, 4),
        "features": "RNN states at the last step, their mean and maximum over steps; heard logits at the last step and their mean (220)",
        "hidden": hidden,
        "weight_decay": decay,
        "tried": {f"hidden {h}, weight decay {d}": {"offtask_caught": round(v[0], 4)} for (h, d), v in tried.items()},
        "fit": {"task_questions": len(task_train), "offtask_clips": len(off_train), "offtask_sentences": len({u.text for u in off_train.utterances}),
                "task_asked_again": share(p_train[y_train == 1] < threshold), "offtask_caught": share(p_train[y_train == 0] < threshold)},
        "chosen_on": {
            "split": f"val: {len(task_val)} questions on {FIT_IMAGES} validation scenes (heard in training voices, and in those voices moved "
                     f"outside the training range: valwarp) and {len(off_val)} off-task clips ({len({u.text for u in off_val.utterances})} "
                     "sentences of scope_data's VAL_OUT and SPOKEN_VAL_OUT) in training voices",
            "rule": f"the threshold at the {FLAGGED:.0%} quantile of the valwarp questions' probability; the detector that catches most of val's off-task clips there",
            "task_asked_again_valwarp": share(p_warp < threshold),
            "task_asked_again_val": share(p_val[y_val == 1] < threshold),
            "offtask_caught": share(p_val[y_val == 0] < threshold),
            "offtask_caught_by_category": {c: share(p_val[y_val == 0][categories == c] < threshold) for c in sorted(set(categories))},
        },
        "seconds": round(time.time() - started, 1),
        "command": "python -m mmdemo.tasks.sort_of_clevr.heard_scope fit --checkpoint " + str(folder),
    }
    save_file({k: v.contiguous() for k, v in scope.state_dict().items()}, str(Path(folder) / WEIGHTS))
    (Path(folder) / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    from mmdemo.tasks.sort_of_clevr.hearing import fit_main

    return fit_main("python -m mmdemo.tasks.sort_of_clevr.heard_scope",
                    "Fit a spoken checkpoint's heard-scope detector: was it one of the six kinds of question?", fit, argv)


if __name__ == "__main__":
    raise SystemExit(main())
