"""The one training loop (mmdemo.train.fit): the schedule, and what a finished run writes."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import tiny_config

from mmdemo.checkpoint import ROOT, find_checkpoints, load_checkpoint
from mmdemo.config import TrainConfig
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
