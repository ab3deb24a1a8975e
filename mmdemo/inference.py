"""Predictor: a raw image and a question (typed, or spoken for an audio checkpoint) in, a Prediction (plain
Python/numpy) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdemo.attribution import IG_STEPS, Attribution, attribute
from mmdemo.audio import Audio, decode, log_mel, step_times
from mmdemo.checkpoint import DEFAULT, load_checkpoint
from mmdemo.errors import InputError
from mmdemo.gate import GATE_FILE, GateConfig, listen
from mmdemo.limits import MAX_TEXT_CHARS
from mmdemo.model import FusionRNN, ModelOutput, pick_device
from mmdemo.processing import MAX_PIXELS, ImageInput, images_to_tensor, load_image, pad_token_ids, prepare_image
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.heard_scope import load_scope, summarise
from mmdemo.tasks.sort_of_clevr.hearing import Hearing, Thresholds, hearing, unsure_notice
from mmdemo.tasks.sort_of_clevr.scope import Scope, detector
from mmdemo.text import clean_text, id_to_token, tokenize

__all__ = ["MAX_PIXELS", "ImageInput", "InputError", "Prediction", "Predictor", "load_image", "prepare_image"]
QuestionInput = str | Path | bytes | tuple | Audio  # typed text; spoken: a sound file (path or bytes), (sample_rate, samples) or decoded Audio


@dataclass
class Prediction:
    answer: str
    probs: dict[str, float]  # label -> probability
    tokens: list[str]  # one label per RNN step: the tokenizer's tokens, or for a spoken question each step's end ("0.40s")
    region_attention: list[list[float]]  # (T, R) where each step looked (hop 1); rows sum to 1
    grid: list[int]  # [h, w], R = h * w, regions row-major
    step_attention: list[float]  # (T,) how much each step counts for the answer
    hop_attention: list[list[list[float]]]  # (T, K, R) every attention hop
    truncated: bool  # the question was longer than the model reads (spoken: cut to max_audio_seconds)
    step_times: list[float] | None = None  # spoken: (T,) when each step ends, seconds from the start of the recording
    audio_seconds: float | None = None  # spoken: how much of the recording the model heard
    notice: str = ""  # something the person should know about their input (cut, clipping, out of domain); safe to show
    in_domain: bool = True  # False: the image or the question is outside what the model was trained on (notice says which)
    question_scope: float | None = None  # typed Sort-of-CLEVR questions: the scope detector's P(in scope); 0 if unreadable
    calibrated: bool = False  # probs are the calibrated photo matcher's (mmdemo.tasks.matching.calibrate), not the model's own
    model_probs: dict[str, float] | None = None  # calibrated, or no question heard: the trained model's own probabilities
    hearing: Hearing | None = None  # spoken: what was heard (the gate's verdict, the heard head's colour and kind)
    answered: bool = True  # False: no question was heard (spoken): answer "" and probs {} (the model's own in model_probs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NOT_HEARD_NOTICE = ("I didn't hear a question: no answer. The recording holds too little speech (tones, music, hum, "
                    "noise or silence get this too). Ask one of the six kinds of question, out loud.")
IMAGE_NOTICE = ("This image does not look like a generated scene (a white canvas with up to six objects in six colours), "
                "the only images this model was trained on, so its answer means nothing here.")
TEXT_CACHE_ITEMS = 512  # contextual MiniLM states kept per served model (~25 KB each: a few MB at most)


@lru_cache(maxsize=TEXT_CACHE_ITEMS)
def question_scope(question: str) -> Scope:
    """The scope detector's verdict on a typed question (cached: the app asks the same question of many models)."""
    return detector().check(question)


def calibrated_matcher(model: FusionRNN, folder: Path):  # -> calibrate.PhotoMatcher | None
    """The calibrated photo matcher when the shipped calibration was fitted on this checkpoint's model, else None."""
    from mmdemo.tasks.matching.calibrate import CALIBRATION, PhotoMatcher, calibration_for

    if model.cfg.task != "match" or not CALIBRATION.is_file():
        return None
    params = calibration_for(folder)
    return PhotoMatcher(params, model=model) if params is not None else None


class Predictor:
    """A loaded checkpoint, ready to answer. Thread-safe: inference only reads the weights."""

    def __init__(self, model: FusionRNN, config: dict[str, Any], device: torch.device, folder: Path) -> None:
        self.model, self.config, self.device, self.folder = model, config, device, folder
        self.cfg = model.cfg
        self.matcher = calibrated_matcher(model, folder)  # the shipped photo matcher calibrates its answers
        # Spoken: the voice-activity gate's settings and the unsure thresholds (colour, kind), all chosen on validation sounds.
        self.gate = GateConfig.from_json(folder / GATE_FILE) if (folder / GATE_FILE).is_file() else GateConfig()
        self.thresholds = Thresholds.of(folder)
        self.heard_scope = load_scope(folder)  # spoken: was it a task question at all (its threshold is thresholds.scope)
        # Training keeps every distinct question's states; a server sees endless new ones, so bound them.
        if model.text is not None:
            model.text.cache_size = min(model.text.cache_size, TEXT_CACHE_ITEMS)

    @classmethod
    def load(cls, folder: str | Path | None = None, device: str = "auto") -> Predictor:
        dev = pick_device(device)
        folder = Path(folder) if folder is not None else DEFAULT
        model, config = load_checkpoint(folder, dev)
        return cls(model, config, dev, folder)

    def clear_caches(self) -> None:
        """Forget cached frozen features (text states, image features, question scopes): the next call pays for them."""
        question_scope.cache_clear()
        if self.model.text is not None:
            self.model.text.clear_cache()
        cache = getattr(self.model.image, "cache", None)
        if cache is not None:
            cache.clear()

    def prepare(self, image: ImageInput) -> np.ndarray:
        """The exact (size, size, 3) uint8 array the model sees."""
        return prepare_image(load_image(image), self.cfg.image_size)

    @torch.inference_mode()
    def predict(self, image: ImageInput, question: QuestionInput) -> Prediction:
        """Answer one question about one image; raises InputError for input a person can fix.

        Text checkpoints take the question as a string. Spoken ones (question_input audio) take a sound
        file's path or bytes, (sample_rate, samples) as Gradio's numpy audio gives it, or mmdemo.audio.decode's Audio."""
        pixels = self.prepare(image)
        if self.cfg.question_input == "audio":
            return self._predict_audio(pixels, question)
        if question is not None and not isinstance(question, str):
            raise InputError("This model reads typed questions: give the question as text.")
        if question is not None and len(question) > MAX_TEXT_CHARS:
            raise InputError(f"The text is too long ({len(question):,} characters; the limit is {MAX_TEXT_CHARS:,}).")
        if question is None or not clean_text(question):
            raise InputError("The question is empty: type a question about the image.")
        ids, truncated = tokenize([question], self.cfg.max_tokens)
        token_ids, mask = pad_token_ids(ids)
        images = images_to_tensor(pixels[None]).to(self.device)
        out = self.model(images, token_ids.to(self.device), mask.to(self.device))
        pred = self._prediction(out, id_to_token(ids[0]), truncated[0])
        if self.matcher is not None:
            p = float(self.matcher.probabilities(self.model.image.frozen_features(images).cpu(), [question], [0])[0])
            pred.model_probs, pred.calibrated = pred.probs, True
            pred.probs = {"match": p, "mismatch": 1.0 - p}
            pred.answer = "match" if p >= 0.5 else "mismatch"
        return self._check_domain(pred, pixels, question)

    def attribute(self, image: ImageInput, question: str, answer: str, ig_steps: int = IG_STEPS) -> Attribution:
        """Integrated Gradients and Grad-CAM of one answer's logit on the image's regions (mmdemo.attribution; ig_steps=0:
        Grad-CAM only); typed questions on the CNN image encoder only (ValueError otherwise). On the predictor's device."""
        if self.cfg.question_input != "text" or answer not in self.cfg.labels:
            raise ValueError("attributions need a typed question and one of the model's answers")
        pixels = self.prepare(image)
        ids, _ = tokenize([question], self.cfg.max_tokens)
        token_ids, mask = pad_token_ids(ids)
        target = torch.tensor([self.cfg.labels.index(answer)], device=self.device)
        return attribute(self.model, images_to_tensor(pixels[None]).to(self.device), token_ids.to(self.device), mask.to(self.device), target,
                         ig_steps=ig_steps)

    def _predict_audio(self, pixels: np.ndarray, question: QuestionInput) -> Prediction:
        if isinstance(question, str) and (len(question) > 4096 or "\0" in question or (" " in question.strip() and not Path(question).is_file())):
            raise InputError("This model listens: give a recording (a sound file, or sample rate and samples), not text.")
        cfg = self.cfg
        sound = decode(question, cfg.max_audio_seconds, cfg.sample_rate)
        frames = log_mel(sound.samples, cfg.sample_rate, cfg.n_mels, cfg.hop_ms)  # (L, M)
        mask = torch.ones(1, len(frames), dtype=torch.bool)
        out = self.model(images_to_tensor(pixels[None]).to(self.device), frames[None].to(self.device), mask.to(self.device))
        steps = int(out.step_mask[0].sum())
        times = step_times(steps, cfg.step_seconds)
        pred = self._prediction(out, [f"{t:.2f}s" for t in times], sound.cut)
        pred.step_times, pred.audio_seconds, pred.notice = times, round(len(sound.samples) / sound.sample_rate, 3), sound.notice
        gate = listen(sound.samples, self.gate)
        last = out.heard[0, steps - 1].float().cpu().numpy() if out.heard is not None else None
        speech_s = min(gate.speech_s, pred.audio_seconds)  # whole 32 ms chunks can overrun the recording's end
        scope_prob = None
        if self.heard_scope is not None and out.heard is not None:
            scope_prob = float(self.heard_scope.probability(summarise(out.states, out.heard, out.step_mask).cpu())[0])
        pred.hearing = hearing(gate.question, speech_s, last, self.thresholds, scope_prob)
        pred = self._check_domain(pred, pixels, None)
        if not gate.question:  # no answer without a question
            pred.answered, pred.answer, pred.in_domain = False, "", False
            pred.model_probs, pred.probs = pred.probs, {}
            pred.notice = f"{NOT_HEARD_NOTICE} {pred.notice}".strip()
        elif not pred.hearing.sure:
            pred.notice = " ".join([unsure_notice(pred.hearing), pred.notice]).strip()
        return pred

    def _check_domain(self, pred: Prediction, pixels: np.ndarray, question: str | None) -> Prediction:
        """Sets in_domain and adds the notices: a scene model given an image unlike a generated scene, and a typed
        question outside the six kinds (the scope detector, mmdemo.tasks.sort_of_clevr.scope)."""
        if self.cfg.task != "sort-of-clevr":
            return pred
        notices = [] if soc.looks_like_scene(pixels) else [IMAGE_NOTICE]
        if question is not None:
            scope = question_scope(question)
            pred.question_scope = scope.score
            notices += [scope.notice] if not scope.in_domain else []
        pred.in_domain = not notices
        pred.notice = " ".join([pred.notice, *notices]).strip()
        return pred

    def _prediction(self, out: ModelOutput, tokens: list[str], truncated: bool) -> Prediction:
        probs = out.logits[0].float().softmax(-1).cpu().numpy()
        hops = out.hop_attention[0].float().cpu().numpy()  # (T, K, R)
        return Prediction(
            answer=self.cfg.labels[int(probs.argmax())],
            probs={label: float(p) for label, p in zip(self.cfg.labels, probs)},
            tokens=tokens,
            region_attention=hops[:, 0].tolist(),
            grid=[self.cfg.grid, self.cfg.grid],
            step_attention=out.step_attention[0].float().cpu().tolist(),
            hop_attention=hops.tolist(),
            truncated=bool(truncated),
        )
