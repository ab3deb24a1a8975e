"""Checkpoints: safetensors + JSON round-trip exactly; strict loading says what does not match."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mmdemo.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch


def _batch() -> QuestionBatch:
    samples = soc.generate("test", 2, wording="train")
    return QuestionBatch(np.stack([s.image for s in samples]), [s.questions for s in samples], tiny_config())


@pytest.mark.parametrize("text_encoder", ["minilm", "learned"])
def test_round_trip_gives_identical_logits(tmp_path: Path, text_encoder: str) -> None:
    model = FusionRNN(tiny_config(cell="lstm", text_encoder=text_encoder)).eval()
    save_checkpoint(model, tmp_path / "ck", {"note": "test"})
    assert not list((tmp_path / "ck").glob("*.pt")) and not list((tmp_path / "ck").glob("*.bin"))
    loaded, config = load_checkpoint(tmp_path / "ck")
    assert config["note"] == "test" and loaded.cfg == model.cfg
    b = _batch()
    with torch.inference_mode():
        a = model(b.images, b.token_ids, b.token_mask, b.image_index)
        c = loaded(b.images, b.token_ids, b.token_mask, b.image_index)
    assert torch.equal(a.logits, c.logits)
    assert torch.equal(a.hop_attention, c.hop_attention)


def test_frozen_minilm_is_not_saved(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any("minilm" in k or "embeddings" in k for k in keys)
    assert (tmp_path / "model.safetensors").stat().st_size < 1_000_000


def test_config_that_does_not_match_weights_is_named(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["hidden_dim"] = 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"cell\.weight_hh.*shape"):
        load_checkpoint(tmp_path)


def test_other_cell_is_named_as_missing_and_unexpected(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config(fusion="sum")), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["fusion"] = "attention"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing weight fusion\.region_proj"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "needs config.json"),
        (lambda d: ((d / "config.json").write_text("{oops"), (d / "model.safetensors").write_bytes(b"x")), "not valid JSON"),
        (lambda d: ((d / "config.json").write_text('{"a": 1}'), (d / "model.safetensors").write_bytes(b"x")), "not an mmdemo"),
    ],
)
def test_not_a_checkpoint(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)


def test_corrupt_weights_and_unknown_config_keys(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["colour_space"] = "hsv"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="colour_space"):
        load_checkpoint(tmp_path)
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")


# ------------------------------------------------------------------------- hostile inputs (issue 16)


def _with_model_field(folder: Path, **fields) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"].update(fields)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("value, message", [(-1, "from 1 to"), (0, "from 1 to"), ("abc", "whole number"), (12.5, "whole number"), (True, "whole number")])
def test_config_sizes_are_checked_by_type_and_range(tmp_path: Path, value: object, message: str) -> None:
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    _with_model_field(tmp_path, hidden_dim=value)
    with pytest.raises(CheckpointError, match=f"hidden_dim must be.*{message}"):
        load_checkpoint(tmp_path)


def test_deeply_nested_or_huge_config_is_refused(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "' + "x" * 2**21 + '"}')
    with pytest.raises(CheckpointError, match="over 1 MB"):
        load_checkpoint(tmp_path)


def test_weights_shapes_are_checked_before_the_model_is_built(tmp_path: Path) -> None:
    """config.json asking for hidden_dim 4096 beside tiny weights is refused from the safetensors header (no 400 MB)."""
    from conftest import peak_rise_mb

    save_checkpoint(FusionRNN(tiny_config()), tmp_path)
    _with_model_field(tmp_path, hidden_dim=4096)
    error, peak = peak_rise_mb(load_checkpoint, tmp_path)
    assert isinstance(error, CheckpointError) and "do not match" in str(error) and "4096" in str(error)
    assert peak < 100


def test_metrics_json_is_strict_json_when_a_metric_is_undefined(tmp_path: Path, monkeypatch) -> None:
    """A NaN metric (e.g. an AUC with one class) is written as null: metrics.json stays JSON."""
    import mmdemo.tasks.sort_of_clevr.evaluate
    from mmdemo.__main__ import evaluate_trained
    from mmdemo.config import TrainConfig

    monkeypatch.setattr(mmdemo.tasks.sort_of_clevr.evaluate, "evaluate_model", lambda model, device, *args, **kwargs: {"overall": float("nan"), "per": [float("inf"), 0.5]})
    (tmp_path / "ck").mkdir()
    evaluate_trained(FusionRNN(tiny_config()), TrainConfig(out=str(tmp_path / "ck")), 1.0, progress=False)

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["overall"] is None and metrics["per"] == [None, 0.5]


def test_every_shipped_checkpoint_loads_strictly_with_its_retired_fields(tmp_path: Path) -> None:
    """config.json of the shipped checkpoints still names tokenizer and question_context (retired: one value each);
    they load, and a re-saved checkpoint has the same weight keys and no retired field."""
    from mmdemo.checkpoint import find_checkpoints, read_config, weight_shapes
    from mmdemo.config import PRUNED, ModelConfig

    folders = find_checkpoints()
    assert folders and any("tokenizer" in read_config(f)["model"] for f in folders)
    for folder in folders:
        model, config = load_checkpoint(folder)
        now = model.cfg.to_dict()  # older configs lack newer fields: those take their defaults
        assert all(now[k] == v for k, v in config["model"].items() if k not in PRUNED), folder
        saved = save_checkpoint(model, tmp_path / folder.name)
        assert weight_shapes(saved / "model.safetensors") == weight_shapes(folder / "model.safetensors")
        assert not set(read_config(saved)["model"]) & set(PRUNED)
    with pytest.raises(ValueError, match="question_context other than True was pruned"):
        ModelConfig.from_dict({"question_context": False})
