"""Resumable runs: the training state without pickle, and a clean stop on Ctrl-C or SIGTERM.

A run's state lives in `resume/` inside its --out folder: state.safetensors (model, optimizer tensors,
torch RNG) and state.json (step, where the data order stands, the run's identity, optimizer settings,
running figures). Rank 0 writes it when a signal stops the run (at the end of the step under way) and
every --save-every steps; `--resume DIR` continues from it, and the result equals an uninterrupted run.
A finished run removes it: its checkpoint is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mmdemo.config import ModelConfig, TrainConfig

STATE_DIR = "resume"
TENSORS = "state.safetensors"
STATE = "state.json"
FORMAT = "mmdemo-resume/1"
# TrainConfig fields that say how a run goes, not what it computes: they may change between the parts of a run.
NOT_IDENTITY = ("out", "device", "threads", "log_every", "save_every", "amp", "resume", "evaluate", "extra", "synth_workers", "eval_images")


class ResumeError(ValueError):
    """A --resume folder that cannot continue this run; the message says why (one line, exit code 2)."""


class Interrupted(Exception):
    """The run stopped on a signal after saving its state; exit code 128 + signal (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, signum: int, step: int, total: int, out: str) -> None:
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step} of {total}; state saved: run the same command with --resume {out} to continue")


class StopRequest:
    """Inside `with StopRequest() as stop:` Ctrl-C and SIGTERM only set stop.signum; the loop finishes its
    step, saves and raises Interrupted. Further signals are absorbed until then (SIGKILL is not)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def identity(model_cfg: ModelConfig, cfg: TrainConfig, **data: Any) -> dict[str, Any]:
    """What must not change between the parts of a run: the model, the training settings, the data."""
    train = {k: v for k, v in asdict(cfg).items() if k not in NOT_IDENTITY}
    return json.loads(json.dumps({"model": model_cfg.to_dict(), "train": train, "data": data}))


def _differences(here: Any, there: Any, prefix: str = "") -> list[str]:
    if isinstance(here, dict) and isinstance(there, dict):
        return [d for k in sorted(set(here) | set(there)) for d in _differences(here.get(k), there.get(k), f"{prefix}{k}.")]
    return [] if here == there else [f"{prefix[:-1]} {here!r} here, {there!r} there"]


def save_state(out: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, run: dict, progress: dict) -> Path:
    """Write out/resume/ (tensors first, then the JSON that names their step); returns the folder."""
    folder = Path(out) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    plain: dict[str, dict] = {}  # non-tensor optimizer state, if any
    for index, values in opt_state["state"].items():
        for k, v in values.items():
            if torch.is_tensor(v):
                tensors[f"optimizer.{index}.{k}"] = v.detach().cpu().contiguous()
            else:
                plain.setdefault(str(index), {})[k] = v
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    step = str(progress["step"])
    save_file(tensors, str(folder / f"{TENSORS}.tmp"), metadata={"format": FORMAT, "step": step})
    os.replace(folder / f"{TENSORS}.tmp", folder / TENSORS)
    state = {"format": FORMAT, "step": progress["step"], "identity": run, "progress": progress,
             "optimizer": {"param_groups": opt_state["param_groups"], "state": plain}}
    (folder / f"{STATE}.tmp").write_text(json.dumps(state, indent=1) + "\n")
    os.replace(folder / f"{STATE}.tmp", folder / STATE)
    return folder


def save_at(out: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, run: dict, progress: dict,
            main: bool, stop: StopRequest | None, total: int, bar: Any) -> None:
    """Save resumable state (rank 0 only); with stop (a signal arrived), wait until every rank is here, close the
    progress bar and raise Interrupted, so the run can be continued with --resume."""
    from mmdemo import distributed

    if main:
        save_state(out, model, opt, run, progress)
    if stop is not None:
        distributed.barrier()  # every rank leaves after the state is on disk
        bar.close()
        raise Interrupted(stop.signum or 15, progress["step"], total, out)


def load_state(resume: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, run: dict) -> dict:
    """Check resume/ against this run, load model, optimizer and torch RNG; returns the saved progress."""
    root = Path(resume)
    folder = root / STATE_DIR
    if not root.is_dir():
        raise ResumeError(f"resume folder not found: {root}")
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        raise ResumeError(f"{root} holds no resumable state ({STATE_DIR}/{STATE} and {STATE_DIR}/{TENSORS}); a run saves one when Ctrl-C or SIGTERM stops it, or every --save-every steps")
    try:
        state = json.loads((folder / STATE).read_text())
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"format must be {FORMAT!r}")
        step, progress, saved_run, optimizer = state["step"], state["progress"], state["identity"], state["optimizer"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise ResumeError(f"{folder / STATE} is corrupt: {e}") from None
    differences = _differences(run, saved_run)
    if differences:
        shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
        raise ResumeError(f"{root} is a run with another config: {shown}")
    try:
        tensors = load_file(str(folder / TENSORS))
        with safe_open(str(folder / TENSORS), "pt") as f:  # the JSON must name the step the tensors were saved at
            saved_step = (f.metadata() or {}).get("step")
        if saved_step != str(step):
            raise ValueError(f"its tensors are from step {saved_step}, {STATE} from step {step}")
        weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        missing = sorted(set(model.state_dict()) - set(weights))
        if missing or any(weights[k].shape != v.shape for k, v in model.state_dict().items()):
            raise ValueError("its model weights do not fit this model" + (f" (missing {missing[0]})" if missing else ""))
        model.load_state_dict(weights, strict=True)
        opt_state: dict[str, Any] = {"state": {}, "param_groups": optimizer["param_groups"]}
        for k, v in tensors.items():
            if k.startswith("optimizer."):
                _, index, name = k.split(".", 2)
                opt_state["state"].setdefault(int(index), {})[name] = v
        for index, values in optimizer["state"].items():
            opt_state["state"].setdefault(int(index), {}).update(values)
        for group in opt_state["param_groups"]:
            group["betas"] = tuple(group.get("betas", (0.9, 0.999)))
        opt.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng.torch"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ResumeError(f"{folder} is corrupt: {' '.join(str(e).split())[:300]}") from None
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return progress


def remove_state(out: str | Path) -> None:
    """A finished run's checkpoint is complete: its resumable state goes."""
    shutil.rmtree(Path(out) / STATE_DIR, ignore_errors=True)
