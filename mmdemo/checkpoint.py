"""Checkpoint folders: model.safetensors + config.json (+ metrics.json). No pickle; strict loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmdemo.config import ModelConfig
from mmdemo.model import FusionRNN

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
FORMAT = "mmdemo-checkpoint/1"
ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT = ROOT / "sort-of-clevr" / "default"  # the one place that names the default checkpoint
DEFAULT_PHOTOS = ROOT / "photos" / "match"  # ... and the default photo (image-text matching) checkpoint


class CheckpointError(ValueError):
    """A folder that is not a loadable mmdemo checkpoint; the message says why."""


def save_checkpoint(model: FusionRNN, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write weights and config; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    config = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: it needs {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mmdemo checkpoint config (format must be {FORMAT!r})")
    return config


def describe_mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between a model's parameters and a state dict."""
    expected = model.state_dict()
    problems = [f"missing weight {k}" for k in expected if k not in state]
    problems += [f"unexpected weight {k}" for k in state if k not in expected]
    problems += [
        f"{k}: checkpoint has shape {tuple(state[k].shape)}, config expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    return problems


def load_checkpoint(folder: str | Path | None = None, device: torch.device | str = "cpu") -> tuple[FusionRNN, dict[str, Any]]:
    """Rebuild the model from config.json and load its weights strictly; returns (model in eval mode, config)."""
    folder = Path(folder) if folder is not None else DEFAULT
    config = read_config(folder)
    try:
        cfg = ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: bad model config: {e}") from None
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS} is not a readable safetensors file: {e}") from None
    model = FusionRNN(cfg)
    problems = describe_mismatch(model, state)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"{folder}: weights do not match config.json: {shown}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), config


def read_metrics(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / METRICS
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def find_checkpoints(root: str | Path = ROOT) -> list[Path]:
    """Every checkpoint folder under root, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(CONFIG) if (p.parent / WEIGHTS).is_file())
