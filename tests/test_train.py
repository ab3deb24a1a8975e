"""The one training loop (mmdemo.train.fit): the schedule, and what a finished run writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from mmdemo.checkpoint import ROOT, CheckpointError, find_checkpoints, load_checkpoint, save_checkpoint
from mmdemo.config import TrainConfig
from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import train as soc_train
from mmdemo.tasks.sort_of_clevr.train import train
from mmdemo.train import lr_at, smallest_step


def test_schedule_warms_up_then_decays_to_zero() -> None:
    lrs = [lr_at(step, 100, 1.0, warmup=10) for step in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and max(lrs) == 1.0
    assert sorted(lrs[9:], reverse=True) == lrs[9:] and lrs[-1] < 0.001
    assert smallest_step(10, 4) == 2 and smallest_step(8, 4) == 4 and smallest_step(3, 4) == 3


def test_a_run_writes_a_loadable_checkpoint_without_machine_paths(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(out=str(out), train_images=8, batch_images=4, max_steps=2, device="cpu", evaluate=False, log_every=1)
    model, result = train(tiny_config(text_encoder="learned"), cfg, progress=False)
    assert result.steps == 2 and not model.training
    config = json.loads((out / "config.json").read_text())
    assert str(tmp_path) not in json.dumps(config) and not {"out", "resume", "spoken_data"} & set(config["train"])
    assert [step for step, _ in config["train"]["loss_log"]] == [1, 2] and config["train"]["questions_seen"] == 8 * 20
    load_checkpoint(out)
    assert not (out / "resume").exists() and not (out / "metrics.json").exists()  # evaluation is the caller's


def test_shipped_configs_name_no_machine_path() -> None:
    for folder in find_checkpoints(ROOT):
        text = (folder / "config.json").read_text()
        assert '"out"' not in text and '"/' not in text, folder.name


def test_init_image_starts_the_image_encoder_from_a_checkpoint_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source_cfg = TrainConfig(out=str(tmp_path / "source"), train_images=8, batch_images=4, max_steps=1, device="cpu", evaluate=False)
    source, _ = train(tiny_config(text_encoder="learned"), source_cfg, progress=False)
    cfg = TrainConfig(out=str(tmp_path / "run"), train_images=8, batch_images=4, max_steps=1, device="cpu", evaluate=False,
                      init_image=str(tmp_path / "source"))
    captured = {}
    real = soc_train.copy_image_encoder

    def spy(model, image_source):  # the new model right after the copy, before any training step
        real(model, image_source)
        captured["image"] = {k: v.clone() for k, v in model.image.state_dict().items()}
        captured["head"] = model.head[0].weight.clone()

    monkeypatch.setattr(soc_train, "copy_image_encoder", spy)
    train(tiny_config(text_encoder="learned"), cfg, progress=False)
    for k, v in source.image.state_dict().items():
        assert torch.equal(captured["image"][k], v), k
    assert not torch.equal(captured["head"], source.head[0].weight)  # the rest starts fresh
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["init_image"] == "source" and str(tmp_path) not in json.dumps(config)


def test_init_image_with_another_image_encoder_is_refused_before_training(tmp_path: Path) -> None:
    save_checkpoint(FusionRNN(tiny_config(text_encoder="learned", image_channels=8)), tmp_path / "other")
    cfg = TrainConfig(out=str(tmp_path / "run"), train_images=8, batch_images=4, max_steps=1, device="cpu", evaluate=False,
                      init_image=str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="image_channels 8 != 12"):
        train(tiny_config(text_encoder="learned"), cfg, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("hold, hold_answer", [(True, False), (False, True), (True, True)])
def test_the_hold_flags_reach_the_attention_loss_in_hop_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold: bool, hold_answer: bool) -> None:
    seen = []
    real = soc_train.attention_loss_terms

    def spy(*args, **kwargs):
        seen.append((kwargs["hold"], args[2] is not None))
        return real(*args, **kwargs)

    monkeypatch.setattr(soc_train, "attention_loss_terms", spy)
    cfg = TrainConfig(out=str(tmp_path / "run"), train_images=8, batch_images=4, max_steps=1, device="cpu", evaluate=False,
                      attn_hold=hold, attn_hold_answer=hold_answer)
    train(tiny_config(text_encoder="learned"), cfg, progress=False)
    assert seen == [((hold, hold_answer), True)]  # hop 1 <- attn_hold, hop 2 <- attn_hold_answer; the step mask given
