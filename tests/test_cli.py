"""The command line: a real smoke training run, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmdemo.tasks.sort_of_clevr import data as soc

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mmdemo", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "ck"
    r = run_cli(
        "train", "--out", str(out), "--train-images", "16", "--batch-images", "8", "--max-steps", "3",
        "--hidden-dim", "16", "--text-dim", "16", "--image-channels", "8", "--attn-dim", "8", "--cell", "lstm",
        "--device", "cpu", "--quiet",
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def scene_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(soc.generate("test", 1)[0].image).save(path)
    return path


@pytest.mark.slow
def test_train_smoke_writes_a_loadable_checkpoint(smoke_checkpoint: Path) -> None:
    assert {p.name for p in smoke_checkpoint.iterdir()} == {"model.safetensors", "config.json", "metrics.json"}
    config = json.loads((smoke_checkpoint / "config.json").read_text())
    assert config["model"]["cell"] == "lstm" and config["train"]["steps"] == 3
    metrics = json.loads((smoke_checkpoint / "metrics.json").read_text())
    assert metrics["num_questions"] == 4000 and 0 <= metrics["overall"] <= 1


@pytest.mark.slow
def test_predict_json_contract(smoke_checkpoint: Path, scene_png: Path) -> None:
    r = run_cli("predict", "--checkpoint", str(smoke_checkpoint), "--image", str(scene_png), "--text", "Is the red object at the top?", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("answer", "probs", "tokens", "region_attention", "grid", "step_attention"):
        assert key in out
    assert np.asarray(out["region_attention"]).shape == (len(out["tokens"]), out["grid"][0] * out["grid"][1])
    assert len(out["step_attention"]) == len(out["tokens"]) and out["answer"] in out["probs"]


def test_predict_says_out_of_domain_first(scene_png: Path) -> None:
    """Issue 28: the CLI carries the same verdict as the API and the app (the shipped default)."""
    r = run_cli("predict", "--image", str(scene_png), "--text", "hello", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["in_domain"] is False and "six kinds" in out["notice"] and out["answer"] in out["probs"]
    r = run_cli("predict", "--image", str(scene_png), "--text", "hello", "--device", "cpu")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("out of domain: ") and lines[1].startswith("what it would say anyway: ")
    r = run_cli("predict", "--image", str(scene_png), "--text", "What shape is the red object?", "--json", "--device", "cpu")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["in_domain"] is True and out["notice"] == "" and out["question_scope"] > 0.85


@pytest.mark.slow
def test_evaluate_json_last_line(smoke_checkpoint: Path) -> None:
    started = time.time()
    r = run_cli("evaluate", "--checkpoint", str(smoke_checkpoint), "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) == {"nonrelational", "relational", "closest_furthest", "count", "overall", "grounding", "grounding_read", "causal", "no_peek", "spread", "onset", "relate", "split"}
    assert out["split"] == "test" and 0.0 <= out["causal"] <= 1.0 and 0.0 <= out["onset"] <= 1.0
    assert not (smoke_checkpoint / "metrics.json").exists() or (smoke_checkpoint / "metrics.json").stat().st_mtime < started


def test_evaluate_val_split_reports_itself_and_is_never_written(smoke_checkpoint: Path) -> None:
    """`evaluate --split val` scores validation images (for choosing between runs) and says so; --write records the test split only."""
    r = run_cli("evaluate", "--checkpoint", str(smoke_checkpoint), "--split", "val", "--images", "3", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["split"] == "val"
    r = run_cli("evaluate", "--checkpoint", str(smoke_checkpoint), "--split", "val", "--write", "--device", "cpu")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--write" in r.stderr
    r = run_cli("evaluate", "--checkpoint", str(smoke_checkpoint), "--split", "valwarp", "--device", "cpu")  # a typed checkpoint
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "spoken checkpoints" in r.stderr


def test_evaluate_faithfulness_reports_edits_and_pointing_in_its_json() -> None:
    """Issue 31: `evaluate --faithfulness --json` carries the faithfulness figures per type and overall."""
    r = run_cli("evaluate", "--images", "1", "--faithfulness", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout.strip().splitlines()[-1])["faithfulness"]
    assert f["num_images"] == 1 and f["attribution_images"] == 1 and set(f["per_subtype"]) <= set(soc.NONREL + soc.REL)
    o = f["overall"]
    assert o["questions"] == 20 and o["pointing_attention_named_n"] == 20 and 0.0 <= o["follows"] <= 1.0
    assert o["ig_gap_vs_captum_max"] < 1e-3 and "follows_remove" in o and "| follows (remove) |" in r.stdout  # the table, printed


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "bench"])
def test_every_command_has_help(command: str) -> None:
    r = run_cli(command, "-h")
    assert r.returncode == 0 and "usage:" in r.stdout


def _bad_inputs(tmp: Path, ck: Path, png: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "notes.txt").write_text("not an image")
    (tmp / "empty").mkdir(exist_ok=True)
    broken = tmp / "broken"
    broken.mkdir(exist_ok=True)
    for f in ck.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["model"]["hidden_dim"] += 8
    (broken / "config.json").write_text(json.dumps(config))
    predict = ["predict", "--checkpoint", str(ck), "--device", "cpu"]
    return {
        "missing image": ([*predict, "--image", str(tmp / "nope.png"), "--text", "hi"], "not found"),
        "non-image file": ([*predict, "--image", str(tmp / "notes.txt"), "--text", "hi"], "Not a readable image"),
        "empty text": ([*predict, "--image", str(png), "--text", "  "], "empty"),
        "not a checkpoint": (["evaluate", "--checkpoint", str(tmp / "empty")], "not a checkpoint"),
        "missing checkpoint": (["evaluate", "--checkpoint", str(tmp / "nowhere")], "not found"),
        "config mismatch": (["predict", "--checkpoint", str(broken), "--image", str(png), "--text", "hi"], "do not match"),
        "faithfulness of a spoken model": (["evaluate", "--checkpoint", "checkpoints/sort-of-clevr/spoken", "--faithfulness"], "typed checkpoints on the CNN"),
        "bad cell": (["train", "--cell", "transformer"], "invalid choice"),
        "bad epochs": (["train", "--epochs", "0", "--out", str(tmp / "x")], "must be positive"),
        "bad heard head": (["train", "--question-input", "audio", "--heard-classes", "12", "--out", str(tmp / "x")], "--heard-classes must be 0"),
        "no cuda": ([*predict[:3], "--device", "cuda", "--image", str(png), "--text", "hi"], "GPU"),
    }


@pytest.mark.slow
def test_bad_input_is_one_line_exit_2(tmp_path: Path, smoke_checkpoint: Path, scene_png: Path) -> None:
    import torch

    for name, (args, expected) in _bad_inputs(tmp_path, smoke_checkpoint, scene_png).items():
        if name == "no cuda" and torch.cuda.is_available():
            continue
        r = run_cli(*args)
        assert r.returncode == 2, (name, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, (name, r.stderr)
        assert expected.lower() in lines[0].lower(), (name, lines[0])


# ------------------------------------------------------------------------- hostile inputs (issue 16)


def _hostile_cli_inputs(tmp: Path, png: Path) -> dict[str, tuple[list[str], str]]:
    from conftest import tiny_config

    from mmdemo.checkpoint import save_checkpoint
    from mmdemo.model import FusionRNN

    configs = {"minus": -1, "text": "abc", "fraction": 12.5}
    for name, value in configs.items():
        folder = save_checkpoint(FusionRNN(tiny_config()), tmp / name)
        config = json.loads((folder / "config.json").read_text())
        config["model"]["hidden_dim"] = value
        (folder / "config.json").write_text(json.dumps(config))
    save_checkpoint(FusionRNN(tiny_config()), tmp / "nested")
    (tmp / "nested" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp / "a-file").write_text("not a folder")
    tiny = ["--train-images", "8", "--batch-images", "4", "--max-steps", "1", "--quiet", "--out", str(tmp / "out")]
    predict = ["predict", "--image", str(png), "--text", "hi"]
    return {
        "predict --device bogus": ([*predict, "--device", "bogus"], "unknown device 'bogus'"),
        "train --device bogus": (["train", *tiny, "--device", "bogus"], "unknown device 'bogus'"),
        **{f"config hidden_dim {v!r}": ([*predict, "--checkpoint", str(tmp / k)], "hidden_dim must be") for k, v in configs.items()},
        "config nested 100,000 deep": ([*predict, "--checkpoint", str(tmp / "nested")], "nested too deeply"),
        "bench --runs 0": (["bench", "--runs", "0"], "--runs must be >= 1"),
        "train --threads -1": (["train", *tiny, "--threads", "-1"], "--threads must be >= 0"),
        "train --hidden-dim -5": (["train", *tiny, "--hidden-dim", "-5"], "--hidden-dim must be from 1"),
        "train --hidden-dim 0": (["train", *tiny, "--hidden-dim", "0"], "--hidden-dim must be from 1"),
        "train --epochs nan": (["train", *tiny, "--epochs", "nan"], "--epochs must be a finite number"),
        "train --out names a file": (["train", *tiny[:-1], str(tmp / "a-file")], "is a file"),
        "train --init-image missing": (["train", *tiny, "--init-image", str(tmp / "nope")], "checkpoint folder not found"),
        "train --init-image with --manifest": (["train", *tiny, "--init-image", str(tmp / "nope"), "--manifest", str(tmp / "m.csv")],
                                               "--init-image starts a Sort-of-CLEVR-NL"),
    }


def test_hostile_cli_inputs_are_one_line_exit_2(tmp_path: Path, scene_png: Path, capsys: pytest.CaptureFixture) -> None:
    """Each was a traceback (or, for --hidden-dim 0, a useless checkpoint and exit 0); none may start training."""
    from mmdemo.__main__ import main

    for name, (args, expected) in _hostile_cli_inputs(tmp_path, scene_png).items():
        assert main(args) == 2, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (name, lines)
    assert not (tmp_path / "out").exists()


def _train_configs(argv: list[str]) -> tuple:
    """The (ModelConfig, TrainConfig) `train` would run with, without training."""
    from dataclasses import fields

    from mmdemo.__main__ import build_parser, derived_defaults
    from mmdemo.config import ModelConfig, TrainConfig, flagged

    args = build_parser().parse_args(["train", *argv])
    derived_defaults(args)
    model = ModelConfig(image_size=args.image_size, **{n: getattr(args, n) for n in flagged(ModelConfig)})
    train = TrainConfig(**{n: getattr(args, n) for n in flagged(TrainConfig)})
    assert all("help" in f.metadata for f in fields(TrainConfig) if f.name not in ("weight_decay", "extra"))
    return model, train


def test_flags_come_from_the_config_dataclasses_and_keep_their_defaults() -> None:
    from mmdemo.config import ModelConfig, TrainConfig, spoken_defaults

    SPOKEN_DEFAULTS = spoken_defaults()
    assert _train_configs([]) == (ModelConfig(), TrainConfig())
    model, train = _train_configs(["--question-input", "audio"])
    assert (model.attn_dim, train.epochs, train.questions_per_image) == (SPOKEN_DEFAULTS["attn_dim"], SPOKEN_DEFAULTS["epochs"], SPOKEN_DEFAULTS["questions_per_image"])
    assert (train.heard_supervision, train.attn_wait) == (SPOKEN_DEFAULTS["heard_supervision"], SPOKEN_DEFAULTS["attn_wait"]) == (0.5, True)
    assert not train.attn_hold_answer and _train_configs([])[1].attn_hold_answer  # the spoken model was trained before hop 2 was held
    assert not _train_configs(["--question-input", "audio", "--no-attn-wait"])[1].attn_wait  # a flag given wins
    assert train.init_image.endswith("checkpoints/sort-of-clevr/hop2-unheld") and Path(train.init_image).is_dir()  # from any directory
    assert _train_configs(["--question-input", "audio", "--init-image", ""])[1].init_image == ""  # from scratch, asked for
    model, _ = _train_configs(["--manifest", "m.jsonl", "--hops", "1"])
    assert (model.image_encoder, model.image_size, model.grid, model.label_bridge, model.attention_global, model.bridge_attention, model.num_hops) == (
        "efficientnet_lite0", 224, 7, True, True, True, 1)
    model, _ = _train_configs(["--manifest", "m.jsonl", "--image-encoder", "cnn"])
    assert (model.image_size, model.grid, model.label_bridge, model.attention_global) == (75, 5, False, False)


def test_presets_are_what_they_say() -> None:
    """configs/default.json is the shipped default's recipe (all defaults); configs/grid.json made the shipped grid models."""
    from mmdemo.checkpoint import ROOT, read_config
    from mmdemo.config import as_flags, preset

    assert _train_configs(as_flags(preset("default"))) == _train_configs([])
    model, train = _train_configs(as_flags(preset("grid")))
    shipped = read_config(ROOT / "sort-of-clevr" / "attention-gru")
    for key, value in preset("grid").items():
        recorded = shipped["model"].get(key, shipped["train"].get(key))
        assert recorded is None or recorded == value, key  # frames, attn_hold, attn_hold_answer and attn_wait are newer than the grid's runs
        assert getattr(model, key, getattr(train, key, None)) == value


def test_gpu_check_without_cuda_is_one_line_exit_2() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: tests/test_gpu.py runs the comparisons")
    r = subprocess.run([sys.executable, "-m", "mmdemo.experiments.gpu_check"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "no CUDA GPU" in r.stderr and not r.stdout


def test_train_config_checks_itself_for_python_callers() -> None:
    """One place for each range: TrainConfig refuses what the CLI refuses (the CLI names the flag)."""
    from mmdemo.__main__ import as_flag_message
    from mmdemo.config import TrainConfig

    bad = {"epochs": 0, "lr": float("nan"), "threads": -1, "seed": 2**32, "frames": 1.5, "word_drop": -0.1, "questions_per_image": 21,
           "eval_images": 0, "log_every": 0, "save_every": -1, "attn_supervision": -0.3, "amp": "fp16", "train_images": 12.5,
           "mel_reverb": 1.5, "mel_babble": float("inf"), "mel_warp": -0.5}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=f"^{name} ") as e:
            TrainConfig(**{name: value})
        assert as_flag_message(str(e.value)).startswith("--" + name.replace("_", "-") + " ")
    assert TrainConfig(epochs=1).epochs == 1  # a whole number is a number of epochs


def test_help_is_short_and_derived_defaults_come_from_the_fields() -> None:
    from dataclasses import fields

    from mmdemo.__main__ import build_parser
    from mmdemo.config import ModelConfig, TrainConfig

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if "help" not in f.metadata:
                continue
            action = actions[f.name]
            assert len(f.metadata["help"]) <= 110, f.name
            assert (action.default is None) == bool(f.metadata["derived"]), f.name
            assert "(default " in action.help and "default %(default)s)" not in f.metadata["help"], f.name


def test_evaluate_says_which_voices_it_heard() -> None:
    """A spoken checkpoint's report names its voices: held out on the test split, training ones on val."""
    from mmdemo.__main__ import format_metrics

    metrics = {"nonrelational": 0.5, "relational": 0.6, "closest_furthest": 0.4, "count": 0.3, "overall": 0.55, "grounding": None,
               "grounding_read": None, "per_subtype": {}, "num_questions": 40, "num_images": 2, "wording": "canonical",
               "voices": {"espeak": ["en-us"]}}
    assert "spoken in held-out voices" in format_metrics({**metrics, "split": "test"})
    report = format_metrics({**metrics, "split": "val"})
    assert "spoken in training voices: the validation split" in report and "held-out" not in report
    report = format_metrics({**metrics, "split": "valwarp"})
    assert "spoken in training voices warped outside the training range" in report and "held-out" not in report
    assert "spoken" not in format_metrics({**metrics, "voices": None})


def test_evaluate_prints_the_per_type_table_for_every_fusion() -> None:
    from mmdemo.__main__ import format_metrics

    metrics = {"nonrelational": 0.5, "relational": 0.6, "closest_furthest": 0.4, "count": 0.3, "overall": 0.55, "grounding": None,
               "grounding_read": None, "causal": None, "no_peek": None, "spread": None, "onset": None, "relate": None,
               "per_subtype": {"shape": 0.5, "count": 0.3}, "num_questions": 40, "num_images": 2, "wording": "canonical"}
    lines = format_metrics(metrics).splitlines()  # a sum model: no reading figures, the table all the same
    assert any(line.split()[:2] == ["type", "accuracy"] for line in lines)
    assert [line.split()[:2] for line in lines if line.split()[0] in ("shape", "count")] == [["shape", "50.0%"], ["count", "30.0%"]]
