"""Ask by voice: speak a typed question, what is known about a recording, and the spoken ask (steps in time)."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mmdemo import plots
from mmdemo.audio import decode, time_to_step
from mmdemo.checkpoint import read_metrics
from mmdemo.demo.ask import Answer, Ask, answer_of
from mmdemo.demo.models import answered, get_predictor
from mmdemo.demo.views import build_view, maps_title
from mmdemo.errors import InputError
from mmdemo.plots import hop_maps
from mmdemo.registry import Registry
from mmdemo.results import pct
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import speech
from mmdemo.tasks.sort_of_clevr.spoken import colour_end

SPOKEN_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "spoken"  # six questions in held-out voices (+ examples.json)
RECORD = "Record, upload, or click **Speak this question**."
SYNTH_VOICES = {  # what each synthesizer's held-out test voices are (tasks/sort_of_clevr/spoken.py voices("test", ...))
    "espeak": "eSpeak NG (304 held-out voices: 2 dialects, 16 variants)",
    "festival": "Festival (its ked voice, never trained on)",
    "piper": "Piper (its one speaker, joe, with the voice scaled outside training)",
}


def file_key(path: str | Path) -> str:
    """A recording's identity: its bytes (gradio copies files into its cache; the bytes stay the same)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def said_state(text: str, words: list, source: str, key: str = "") -> dict:
    """What is known about a recording that was made from a text: the text and each word's (text, start, end) in seconds."""
    return {"key": key, "text": text, "words": [tuple(w) for w in words], "source": source}


def spoken_examples() -> list[dict]:
    """examples/spoken/examples.json: each shipped recording's file, question, voice and word boundaries."""
    index = SPOKEN_EXAMPLES / "examples.json"
    return json.loads(index.read_text()) if index.is_file() else []


def strip_labels(step_times: list[float], words: list, step_seconds: float, every_seconds: float = 0.2) -> list[str]:
    """What each 40 ms chip of a spoken question's strip shows: each word at the step that has heard it, when
    the words are known; else the time every 0.2 s. The other chips are narrow and unlabelled."""
    labels = [""] * len(step_times)
    if words:
        for text, _, end in words:
            t = min(time_to_step(end, step_seconds), len(labels) - 1)
            labels[t] = labels[t] or str(text)
        return labels
    every = max(1, round(every_seconds / step_seconds))
    return [f"{end:.1f}s" if (t + 1) % every == 0 else "" for t, end in enumerate(step_times)]


def spoken_columns(step_times: list[float], words: list, step_seconds: float, most: int = 12) -> tuple[list[int], list[str]]:
    """Which steps the small multiples show for a spoken question, and their labels: the step at the end of
    each word heard (labelled with the word) when the words are known, else `most` evenly spaced steps (the time)."""
    if not step_times:
        return [0], ["0.00s"]
    if words:
        ends = [(t, w) for t, w in enumerate(strip_labels(step_times, words, step_seconds)) if w]
        return [t for t, _ in ends], [f"{w} ({step_times[t]:.2f}s)" for t, w in ends]
    last = len(step_times) - 1
    shown = sorted({int(i) for i in np.rint(np.linspace(0, last, min(most, last + 1)))})
    return shown, [f"{step_times[t]:.2f}s" for t in shown]


def recording_caption(said: dict, seconds: float | None = None) -> str:
    length = f", {seconds:.1f} s" if seconds else ""
    return f"**{html.escape(said['source'][0].upper() + said['source'][1:])}**{length}: “{html.escape(said['text'])}” (word times known)."


@dataclass
class Spoken:
    """A question voiced by the app: the recording's file, what is known about it, its caption."""

    path: str
    said: dict
    caption: str


class Voice:
    """The spoken-question room: the recordings the app knows the words of, and asking with them."""

    def __init__(self, registry: Registry, ask: Ask, audio_dir: Path) -> None:
        self.registry = registry
        self.scenes = ask.scenes
        self.audio_dir = audio_dir  # questions voiced by "Speak this question"
        self.examples = {file_key(SPOKEN_EXAMPLES / e["file"]): said_state(e["question"], e["words"], f"example recording, voice {e['voice']}")
                         for e in spoken_examples()}

    def speak(self, question: str) -> Spoken:
        """'Speak this question': the typed question voiced by eSpeak NG into a WAV file; its words' times are kept."""
        try:
            said = speech.synthesize(question)
        except (speech.SpeechUnavailable, ValueError) as e:
            raise InputError(f"Could not speak this question: {e}") from None
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        path = self.audio_dir / f"spoken-{hashlib.sha256(question.encode()).hexdigest()[:16]}.wav"
        sf.write(path, said.samples, said.sample_rate, subtype="PCM_16")
        state = said_state(question, said.words, f"your question, voiced by eSpeak NG ({speech.DEFAULT_VOICE})", key=file_key(path))
        return Spoken(str(path), state, recording_caption(state, len(said.samples) / said.sample_rate))

    def known_recording(self, recording: str, said: dict | None) -> dict | None:
        """What is known about this recording (its text and word times): a voiced question or a shipped example; else None."""
        try:
            key = file_key(recording)
        except OSError:
            return None
        if said and said.get("key") == key:
            return said
        return self.examples.get(key)

    def describe(self, recording: str | None, said: dict | None) -> str:
        """On every change of recording: say whether its words are known (the truth needs them)."""
        if not recording:
            return RECORD
        known = self.known_recording(recording, said)
        if known is not None:
            return recording_caption(known)
        return "A recording whose words are not known here: the model answers it; the truth and the word marks need the question's text."

    def measured(self, checkpoint: str | None) -> str:
        """How sure to be of a spoken answer: the checkpoint's measured accuracy, saying exactly on which voices."""
        m = read_metrics(self.registry.root / checkpoint) if checkpoint else None
        if not m or m.get("nonrelational") is None:
            return "No measured figures for this checkpoint (`python -m mmdemo evaluate --checkpoint DIR --write`)."
        said = (f"Measured on the test split ({m.get('num_questions', 4000):,} questions) in voices it never trained on: **{pct(m['nonrelational'])}** "
                f"of non-relational and **{pct(m['relational'])}** of relational questions right; hop 1 on the named object "
                f"{pct(m.get('grounding'))} of the time (when the colour word has been heard).")
        per = m.get("per_synth") or {}
        if per:
            said += " By synthesizer (non-relational / relational): " + "; ".join(
                f"{SYNTH_VOICES.get(name, name)} {pct(r['nonrelational'])} / {pct(r['relational'])}" for name, r in per.items()) + "."
        else:
            said += " Every test voice was an eSpeak NG voice."
        heard, offtask = m.get("heard") or {}, m.get("offtask") or {}
        if heard.get("unsure") is not None:
            said += f" It asks you to say {pct(heard['unsure'])} of those questions again rather than answer unsure."
        if offtask.get("overall"):
            said += (f" Of {offtask['overall']['clips']} spoken sentences that are not such questions (chat, commands, other questions) "
                     f"it answered {pct(offtask['overall']['answered'])}.")
        return said + " Synthetic voices only: a human voice may do worse."

    def ask(self, image: Any, recording: str | None, checkpoint: str | None, state: dict | None, said: dict | None) -> Answer:
        """A spoken question (a sound file's path): the answer with steps in time, and the time plot."""
        if not recording:
            raise InputError("Record or upload a spoken question first, or type one and click **Speak this question**.")
        if not checkpoint:
            raise InputError("No spoken-question checkpoint was found under checkpoints/ (train one: docs/SPOKEN.md).")
        predictor = get_predictor(self.registry, checkpoint)
        cfg = predictor.cfg
        sound = decode(recording, cfg.max_audio_seconds, cfg.sample_rate)  # decoded once: the model hears it and the time plot shows it
        predictor, pixels, pred = answered(self.registry, checkpoint, image, sound, predictor)
        said = self.known_recording(recording, said)
        text, words = (said["text"], said["words"]) if said else ("", [])
        colour_step = -1
        parsed = soc.parse_question(text) if text else None
        if parsed is not None:
            end = colour_end([speech.Word(*w) for w in words], parsed[1])
            colour_step = min(time_to_step(end, cfg.step_seconds), len(pred.tokens) - 1) if end >= 0 else -1
        scene = self.scenes.scene_of(pixels, cfg.image_size, state)
        view = build_view(pred, pixels, cfg, scene, text, colour_step=colour_step)
        view.labels = strip_labels(pred.step_times or [], words, cfg.step_seconds)
        shown, labels = spoken_columns(pred.step_times or [], words, cfg.step_seconds)
        maps = hop_maps(view.hops[shown], labels, tuple(pred.grid), shown.index(colour_step) if colour_step in shown else -1,
                        maps_title(view, "Where it looked as each word ended" if words else "Where it looked, moment by moment"))
        ms = f"{1000 * cfg.step_seconds:.0f} ms"
        heard = plots.spoken_figure(sound.samples, sound.sample_rate, pred.step_times, np.asarray(pred.region_attention), tuple(pred.grid),
                                    words, f"What the model heard and, below, where hop 1 looked at every {ms}")
        return answer_of(pred, predictor, scene, text, view, maps, f"RNN step ({ms} of speech each)", heard, said)
