"""Configuration dataclasses: ModelConfig travels with a checkpoint, TrainConfig becomes CLI flags."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mmdemo.limits import MAX_AUDIO_SECONDS

CELLS = ("rnn", "lstm", "gru")
FUSIONS = ("sum", "concat", "attention")
REGION_ATTENTION_FUSIONS = ("attention",)  # the fusions that weigh regions per step (the others look everywhere evenly)
TEXT_ENCODERS = ("minilm", "minilm_static", "learned")
IMAGE_ENCODERS = ("cnn", "efficientnet_lite0")
MODALITIES = ("both", "text", "image")
QUESTION_INPUTS = ("text", "audio")
AUDIO_STRIDES = (1, 2, 4, 8)  # frames per RNN step: one stride-2 causal convolution per factor of 2
AMP_MODES = ("off", "bf16")
PRESETS = Path(__file__).resolve().parent / "configs"  # presets as files: what `train` starts from in a setting
# How spoken evaluation renders its questions (evaluate --condition; tasks/sort_of_clevr/spoken.py draws them).
CONDITIONS = ("mixed", "clean", "babble10", "room", "phone")
SPOKEN = "with --question-input audio: configs/spoken.json"  # the rule of the fields whose default the spoken preset changes


def preset(name: str) -> dict[str, Any]:
    """mmdemo/configs/<name>.json: field values (keys starting with _ are notes)."""
    values = json.loads((PRESETS / f"{name}.json").read_text())
    return {k: v for k, v in values.items() if not k.startswith("_")}


def spoken_defaults() -> dict[str, Any]:
    """The train command's defaults with --question-input audio (configs/spoken.json), read when asked for."""
    return preset("spoken")


# Fields no shipped model changes any more, retired from the config; an older checkpoint's config.json may still
# name them, with the one value every checkpoint has (docs/EXPERIMENTS.md "Pruned options"). Nothing else loads.
PRUNED = {"attention": "additive", "region_features": "raw", "question_context": True, "tokenizer": "all-MiniLM-L6-v2"}
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")


# Sizes a model may have: far beyond every shipped model, small enough that no config can ask for an absurd
# allocation (image_size and max_tokens shape every request; MiniLM reads at most 512 tokens).
INT_RANGES = {
    "text_dim": (1, 4096), "image_channels": (3, 4096), "hidden_dim": (1, 4096), "attn_dim": (1, 4096),
    "image_size": (8, 1024), "grid": (1, 32), "num_hops": (1, 8), "max_tokens": (2, 512),
    "heard_classes": (0, 64), "sample_rate": (1000, 96000), "n_mels": (1, 256), "hop_ms": (1, 100), "audio_stride": (1, 8), "audio_channels": (1, 4096),
}
MAX_CONFIG_AUDIO_SECONDS = 600.0  # the most a config may set max_audio_seconds to (limits.MAX_AUDIO_SECONDS is the default)


KIND_NAMES = {int: "a whole number", bool: "true or false", str: "a string", float: "a number"}


def _short(value: Any) -> str:
    """repr(value), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def flag(default: Any, help: str, derived: str = "", **argparse_extras: Any) -> Any:
    """A config field that is also a `python -m mmdemo train` flag (--field-name), with a short help.

    derived: when the default is not `default`, how it is worked out from other flags (`python -m mmdemo train`
    does it, so the flag itself defaults to None; the help shows the rule). argparse_extras: choices, metavar,
    flag (another name)."""
    return field(default=default, metadata={"help": help, "derived": derived, **argparse_extras})


def _check_types(config: Any) -> None:
    """Every int, float, bool and str field of a config dataclass has its type (a config.json is data from disk)."""
    kinds = {"int": int, "bool": bool, "str": str, "float": float}
    for f in fields(config):
        value, kind = getattr(config, f.name), kinds.get(str(f.type))
        if kind is float:  # a whole number is a number too; True is not
            ok = type(value) in (int, float)
        else:
            ok = kind is None or type(value) is kind  # bool is not an int here, nor 12.5 or "64"
        if not ok:
            raise ValueError(f"{f.name} must be {KIND_NAMES[kind]}, got {_short(value)}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; saved as config.json beside the weights. Fields made with flag()
    are `train` flags."""

    cell: str = flag("gru", "RNN core", choices=CELLS)
    fusion: str = flag("attention", "how the image enters each step", choices=FUSIONS)
    # minilm is the default because it carries over to wordings never trained on (README: held-out rewordings)
    text_encoder: str = flag("minilm", "token vectors: frozen contextual MiniLM states, frozen MiniLM input embeddings, or a trained table",
                             choices=TEXT_ENCODERS)
    text_dim: int = flag(64, "token vector width")
    image_encoder: str = flag("cnn", "image regions: a CNN trained from scratch, or frozen EfficientNet-Lite0 (224 px, 7 x 7)",
                              "efficientnet_lite0 with --manifest", choices=IMAGE_ENCODERS)
    label_bridge: bool = flag(False, "compare words with the ImageNet class names of each region (2 extra inputs per step)",
                              "on with --manifest, efficientnet_lite0 and minilm")
    image_channels: int = flag(64, "region vector width")
    image_size: int = 75  # images are resized to image_size x image_size before the encoder (224 for efficientnet_lite0)
    grid: int = flag(5, "regions per side (R = grid * grid)", "7 for efficientnet_lite0")
    hidden_dim: int = flag(64, "RNN hidden size")
    attn_dim: int = flag(64, "attention query/key width", SPOKEN)
    bridge_attention: bool = flag(False, "the label bridge's word-region similarity also steers hop 1",
                                  "on with the label bridge and attention fusion")
    attention_global: bool = flag(False, "attention fusion also passes the pooled image to every step",
                                  "on with --manifest and efficientnet_lite0")
    num_hops: int = flag(2, "attention hops per step (sum and concat have none)", flag="--hops")
    # causal: step t knows only tokens 1..t, so the per-step attention shows reading. False = "reads ahead": every
    # token vector already knows the whole sentence (the earlier default and the photo models)
    causal: bool = flag(True, "step t reads tokens 1..t only; --no-causal reads the whole question first")
    modality: str = flag("both", "both inputs, or a baseline that blanks the other one", choices=MODALITIES)
    max_tokens: int = 32  # questions are truncated to this many tokenizer tokens
    labels: tuple[str, ...] = ANSWERS  # class names, in logit order
    question_input: str = flag("text", "typed questions, or spoken ones (log-mel frames; docs/SPOKEN.md)", choices=QUESTION_INPUTS)
    sample_rate: int = 16000  # audio: waveforms are resampled to this rate
    n_mels: int = flag(40, "audio: mel bands per 10 ms frame")
    hop_ms: int = 10  # audio: one log-mel frame every hop_ms (a 25 ms window ending there)
    audio_stride: int = flag(4, "audio: log-mel frames per RNN step", choices=AUDIO_STRIDES)
    audio_channels: int = flag(48, "audio: conv front-end width")
    heard_classes: int = flag(0, "audio: classes of the what-was-heard head used in training (0 = none)", SPOKEN)
    max_audio_seconds: float = MAX_AUDIO_SECONDS  # audio: longer recordings are cut to their start (with a notice)
    task: str = "sort-of-clevr"  # what the labels mean; shown in the UI

    def __post_init__(self) -> None:
        _check_types(self)
        for name, (low, high) in INT_RANGES.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be from {low} to {high}, got {getattr(self, name)}")
        labels = self.labels
        if not isinstance(labels, tuple) or not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct non-empty strings, got {_short(labels)}")
        for name, allowed in (("cell", CELLS), ("fusion", FUSIONS), ("text_encoder", TEXT_ENCODERS), ("image_encoder", IMAGE_ENCODERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.image_encoder == "efficientnet_lite0" and (self.image_size, self.grid) != (224, 7):
            raise ValueError("image_encoder efficientnet_lite0 needs image_size 224 and grid 7")
        if self.label_bridge and (self.image_encoder != "efficientnet_lite0" or self.text_encoder != "minilm"):
            raise ValueError("label_bridge needs image_encoder efficientnet_lite0 and text_encoder minilm")
        if self.bridge_attention and not (self.label_bridge and self.has_region_attention):
            raise ValueError("bridge_attention needs label_bridge and fusion attention")
        if self.attention_global and not self.has_region_attention:
            raise ValueError("attention_global needs fusion attention (sum and concat always see the pooled image)")
        for name, allowed in (("modality", MODALITIES), ("question_input", QUESTION_INPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0 < self.max_audio_seconds <= MAX_CONFIG_AUDIO_SECONDS:
            raise ValueError(f"max_audio_seconds must be a number above 0 and at most {MAX_CONFIG_AUDIO_SECONDS}, got {_short(self.max_audio_seconds)}")
        if self.audio_stride not in AUDIO_STRIDES:
            raise ValueError(f"audio_stride must be one of {AUDIO_STRIDES}, got {self.audio_stride!r}")
        if self.sample_rate * self.hop_ms % 1000:
            raise ValueError("sample_rate * hop_ms must be a whole number of samples per 1000")
        if self.question_input == "audio" and (not self.causal or self.label_bridge):
            raise ValueError("question_input audio reads causally (causal true) and has no label bridge")

    @property
    def has_region_attention(self) -> bool:
        """Whether the fusion weighs the regions at every step (attention); sum and concat look everywhere evenly,
        so their maps are uniform and there is no reading or grounding to measure."""
        return self.fusion in REGION_ATTENTION_FUSIONS

    @property
    def num_regions(self) -> int:
        return self.grid * self.grid

    @property
    def step_seconds(self) -> float:
        """Audio: the stretch of speech one RNN step reads (a step ends every step_seconds)."""
        return self.hop_ms * self.audio_stride / 1000.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from JSON; unknown keys are an error so that a foreign config is not half-read."""
        known = {f.name for f in fields(cls)} | set(PRUNED)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        d = dict(d)
        for key, kept in PRUNED.items():  # older checkpoints name options that were pruned; only the kept value loads
            if key in d and d.pop(key) != kept:
                raise ValueError(f"{key} other than {kept!r} was pruned (docs/EXPERIMENTS.md); this version cannot build it")
        if "labels" in d:
            if not isinstance(d["labels"], (list, tuple)):
                raise ValueError(f"labels must be a list, got {_short(d['labels'])}")
            d["labels"] = tuple(d["labels"])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Training run settings, range-checked when made; the fields made with flag() are `python -m mmdemo train` flags."""

    out: str = flag("checkpoints/sort-of-clevr/run", "checkpoint folder to write")
    epochs: float = flag(16.0, "passes over the training images (fractions allowed)", SPOKEN)
    train_images: int = flag(9800, "training images, 20 questions each")
    batch_images: int = flag(32, "images per step; every image brings its questions")
    lr: float = flag(3e-3, "peak learning rate: linear warm-up, cosine decay")
    weight_decay: float = 0.0  # AdamW weight decay
    frames: float = flag(0.25, "share of training questions wrapped in filler such as 'Quick question: ...'")
    word_drop: float = flag(0.2, "share of typed training questions that lose one small word such as 'the'", SPOKEN)
    heard_supervision: float = flag(0.0, "weight of the what-was-heard loss (models with heard_classes)", SPOKEN)
    attn_supervision: float = flag(0.3, "weight of the loss that tells attention where the named object is (0 = off)")
    attn_hold: bool = flag(True, "supervise hop 1 on the named object at every step from the colour word on")
    attn_hold_answer: bool = flag(True, "supervise hop 2 on the answer object at every step from the colour word on", SPOKEN)
    attn_wait: bool = flag(True, "supervise every hop to spread evenly over the image before the colour word", SPOKEN)
    init_image: str = flag("", "start the image encoder from this checkpoint's ('' = from scratch)", SPOKEN, metavar="DIR")
    seed: int = flag(0, "random seed: data order, initialisation and the training scenes")
    device: str = flag("auto", "auto | cpu | cuda; auto = cuda when available")
    threads: int = flag(0, "CPU threads (0 = torch's default)")
    questions_per_image: int = flag(20, "questions per image per step (at most 20)", SPOKEN)
    spoken_data: str = flag("data/spoken", "audio: synthesized-utterance cache, made on first use")
    spoken_utterances: int = flag(16000, "audio: training utterances in the pool", SPOKEN)
    spec_augment: float = flag(0.0, "audio: share of training utterances given SpecAugment time and frequency masks", SPOKEN)
    mel_reverb: float = flag(0.0, "audio: share of training utterances given a reverb tail on their log-mel frames at each draw", SPOKEN)
    mel_babble: float = flag(0.0, "audio: share of training utterances mixed with 1-4 other pool utterances at 3-20 dB SNR at each draw", SPOKEN)
    mel_warp: float = flag(0.0, "audio: share of training utterances whose voice is warped along the mel axis (VTLP) at each draw", SPOKEN)
    synth_workers: int = flag(0, "audio: processes that synthesize missing utterances (0 = one per CPU, shared by torchrun's processes)")
    max_steps: int = flag(0, "stop after this many steps (0 = no cap)")
    eval_images: int = flag(200, "test-split images evaluated after training (1 to 200)")
    log_every: int = flag(50, "steps between progress updates and loss_log entries")
    amp: str = flag("off", "mixed precision: bf16 autocast on a GPU (CPU trains in exact fp32)", choices=AMP_MODES)
    save_every: int = flag(0, "also save a resumable state into OUT/resume/ every N steps (0 = only when stopped)")
    resume: str = flag("", "continue the run whose state is in DIR/resume, with its flags (--out defaults to DIR)", metavar="DIR")
    evaluate: bool = flag(True, "evaluate the finished model and write metrics.json")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the checkpoint

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("epochs", "lr", "frames", "word_drop", "heard_supervision", "attn_supervision", "weight_decay", "spec_augment", "mel_reverb", "mel_babble", "mel_warp"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        for name in ("epochs", "train_images", "batch_images", "lr", "questions_per_image", "spoken_utterances", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("threads", "max_steps", "synth_workers", "save_every", "attn_supervision", "heard_supervision", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, (low, high) in {"seed": (0, 2**32 - 1), "frames": (0, 1), "word_drop": (0, 1), "spec_augment": (0, 1), "mel_reverb": (0, 1), "mel_babble": (0, 1), "mel_warp": (0, 1), "questions_per_image": (1, 20),
                                  "eval_images": (1, 200)}.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be from {low} to {high}, got {getattr(self, name)}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")


def as_flags(values: dict[str, Any]) -> list[str]:
    """Preset values -> `python -m mmdemo train` arguments (a bool field becomes --name or --no-name)."""
    out: list[str] = []
    for key, value in values.items():
        flag = flag_name(key)
        out += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return out


def flagged(cls: type) -> list[str]:
    """The fields of a config dataclass that are `train` flags (made with flag())."""
    return [f.name for f in fields(cls) if "help" in f.metadata]


def flag_name(name: str) -> str:
    """The `train` flag of a ModelConfig or TrainConfig field: --field-name, or the name its flag() gives."""
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if f.name == name and "help" in f.metadata:
                return f.metadata.get("flag", "--" + name.replace("_", "-"))
    raise KeyError(name)
