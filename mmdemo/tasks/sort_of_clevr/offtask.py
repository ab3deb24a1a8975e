"""Speech that is not one of the task's questions, and what the spoken model does with it.

    python -m mmdemo.tasks.sort_of_clevr.offtask check [--checkpoint DIR] [--condition clean] [--write] [--json]

SENTENCES holds English sentences a visitor might say instead of a question of the six kinds: chat, other
questions, commands, sentences that name a colour, and questions about the picture that are none of the kinds;
language_sentences() questions in 15 other languages, each spoken by eSpeak NG in its own language.
Each is voiced once by every synthesizer family, in the test split's held-out voices (spoken.plan_questions,
the text swapped), under one rendering condition, and given to the spoken Predictor with a test scene. Each
clip ends one of three ways: "not heard" (the voice-activity gate heard too little speech), "asked again" (a
question was heard but its colour or kind was unsure: hearing.py) or "answered" (as sure as a real question).
Nothing here chooses anything: the gate and the thresholds were chosen on validation questions; this only
measures them on speech that should not be answered. `--write` records the report in the checkpoint's
metrics.json under "offtask".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

GROUPS: dict[str, tuple[str, ...]] = {
    "chat": ("hello", "hello, how are you", "good morning", "thank you very much", "can you hear me",
             "tell me a joke", "what is your name", "I don't know", "okay, let's start", "never mind"),
    "other questions": ("what is the weather like today", "what time is it", "where is the nearest train station",
                        "how old are you", "what is the capital of France", "who won the game last night",
                        "can you help me with my homework", "how do I get to the airport", "why is the sky blue",
                        "what day is it today"),
    "commands": ("please open the red door", "turn off the lights", "play some music", "set a timer for five minutes",
                 "call my mother", "send a message to John", "paint the fence green", "put the yellow cup on the table",
                 "close the window", "stop"),
    "colour sentences": ("I like green apples", "the sky is blue today", "my car is red", "she wore a yellow dress",
                         "the grass is green", "orange is my favourite fruit", "grey clouds are coming",
                         "what colour is the sky", "red wine or white wine", "blue is a nice colour"),
    "about the picture": ("how many objects are there", "what colour is the square", "is there a red object",
                          "which object is the biggest", "are there any triangles", "what colour is the circle on the left",
                          "describe the picture", "how many colours do you see", "is the red object bigger than the blue one",
                          "what is in the middle of the image"),
}
SENTENCES = tuple((group, text) for group, texts in GROUPS.items() for text in texts)
# Questions in other languages, each spoken by eSpeak NG in its own language: the typed scope detector's TEST_OUT and
# FRESH_OUT sentences (scope_data; they only measure there too), with their languages, in order.
LANGUAGE_CODES = ("fr", "es", "de", "it", "pt", "nl", "pl", "sv", "cmn", "cmn", "ja", "ru", "ar", "ko", "tr", "fi",  # TEST_OUT
                  "fr", "es", "de", "it", "cmn", "ru", "tr", "pl")  # FRESH_OUT
OUTCOMES = ("not heard", "asked again", "answered")
SCENES = 10  # test scenes the clips are drawn against (their plan gives the voices)


def outcome(pred) -> str:
    """What the app does with a Prediction of a spoken model: "not heard", "asked again" or "answered"."""
    if not pred.answered:
        return "not heard"
    return "answered" if pred.hearing is None or pred.hearing.sure else "asked again"


def clips(condition: str, sentences: tuple[tuple[str, str], ...] = SENTENCES):
    """Every sentence voiced by every synthesizer family in held-out voices: yields (group, text, utterance,
    scene image, samples at 16 kHz). The voices and renderings are the test plan's, question by question."""
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr import spoken, synthesizers

    samples = soc.test_split()[:SCENES]
    plan = spoken.plan_questions(samples, "test", condition=condition)
    by_synth = {synth: [(i, u) for i, u in enumerate(plan) if u.synth == synth] for synth in spoken.SYNTHS}
    need = len(sentences)
    if any(len(us) < need for us in by_synth.values()):
        raise ValueError(f"at most {min(len(us) for us in by_synth.values())} sentences per family")
    todo = []  # (group, text, utterance, scene index)
    for us in by_synth.values():
        for (group, text), (i, u) in zip(sentences, us):
            todo.append((group, text, replace(u, text=text), i // len(samples[0].questions)))
    lines = [spoken.festival_line(u) for _, _, u, _ in todo if u.synth == "festival"]
    festival = dict(zip(lines, synthesizers.festival(lines))) if lines else {}  # one Festival process for them all
    for group, text, u, k in todo:
        yield group, text, u, samples[k].image, spoken.render(u, festival)[0]


def language_sentences() -> tuple[tuple[str, str], ...]:
    """(eSpeak language, sentence) of the questions in other languages."""
    from mmdemo.tasks.sort_of_clevr.scope_data import FRESH_OUT, TEST_OUT

    return tuple(zip(LANGUAGE_CODES, [*TEST_OUT["other languages"], *FRESH_OUT["other languages"]], strict=True))


def language_clips(condition: str):
    """Every question in another language, spoken by eSpeak NG in that language with a held-out voice variant (the
    test plan's eSpeak utterances, text and language swapped): yields what clips() yields, the group the language."""
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr import spoken

    samples = soc.test_split()[:SCENES]
    plan = spoken.plan_questions(samples, "test", condition=condition)
    espeak = [(i, u) for i, u in enumerate(plan) if u.synth == "espeak"]
    for (code, text), (i, u) in zip(language_sentences(), espeak, strict=False):
        variant = u.voice.partition("+")[2]
        voiced = replace(u, text=text, voice=f"{code}+{variant}" if variant else code)
        yield code, text, voiced, samples[i // len(samples[0].questions)].image, spoken.render(voiced)[0]


def tally(predictor, voiced) -> dict:
    """The Predictor's outcome for each clip of `voiced` (what clips() yields), counted overall, by group and by
    synthesizer, with every answered clip listed (what it was heard as and the answer)."""
    counts: dict[str, Counter] = {"overall": Counter()}
    answered = []
    for group, text, u, image, samples in voiced:
        pred = predictor.predict(image, (16000, samples))
        result = outcome(pred)
        for key in ("overall", f"group:{group}", f"synth:{u.synth}"):
            counts.setdefault(key, Counter())[result] += 1
        if result == "answered":
            h = pred.hearing
            answered.append({"text": text, "synth": u.synth, "voice": u.voice, "heard": f"{h.colour} {h.colour_prob:.2f}, {h.kind} {h.kind_prob:.2f}",
                             "answer": pred.answer})

    def shares(c: Counter) -> dict:
        n = sum(c.values())
        return {"clips": n, **{o.replace(" ", "_"): round(c[o] / n, 4) for o in OUTCOMES}}

    return {
        "overall": shares(counts["overall"]),
        "by_group": {k.split(":", 1)[1]: shares(c) for k, c in counts.items() if k.startswith("group:")},
        "by_synth": {k.split(":", 1)[1]: shares(c) for k, c in counts.items() if k.startswith("synth:")},
        "answered": answered,
    }


def check(folder: str | Path, condition: str = "clean", sentences: tuple[tuple[str, str], ...] = SENTENCES) -> dict:
    """Voice the sentences (clips) and tally what the checkpoint's Predictor does with them."""
    from mmdemo.config import CONDITIONS
    from mmdemo.inference import Predictor
    from mmdemo.tasks.sort_of_clevr.synthesizers import available

    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; one of {', '.join(CONDITIONS)}")
    predictor = Predictor.load(folder, device="cpu")
    if predictor.cfg.question_input != "audio":
        raise ValueError(f"{folder} reads typed questions; this check is for spoken checkpoints")
    ok, why = available()
    if not ok:
        raise ValueError(f"voicing the sentences needs eSpeak NG, Festival and Piper: {why}")
    return {
        "condition": condition,
        "voices": "held-out voices of eSpeak NG, Festival and Piper (the test split's plan)",
        "sentences": len(sentences),
        **tally(predictor, clips(condition, sentences)),
        "languages": {"voices": "eSpeak NG in each sentence's own language, held-out voice variants", "sentences": len(language_sentences()),
                      **tally(predictor, language_clips(condition))},
        "command": f"python -m mmdemo.tasks.sort_of_clevr.offtask check --checkpoint {folder} --condition {condition}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.offtask",
                                description="What a spoken checkpoint does with speech that is not one of the task's questions.")
    p.add_argument("command", choices=("check",))
    p.add_argument("--checkpoint", default="checkpoints/sort-of-clevr/spoken", help="spoken checkpoint folder (default %(default)s)")
    p.add_argument("--condition", default="clean", help="rendering: clean | mixed | babble10 | room | phone (default %(default)s)")
    p.add_argument("--write", action="store_true", help="record the report in the checkpoint's metrics.json (\"offtask\")")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    try:
        if not (Path(args.checkpoint) / "config.json").is_file():
            raise ValueError(f"{args.checkpoint} is not a checkpoint folder (no config.json)")
        report = check(args.checkpoint, args.condition)
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if args.write:
        from mmdemo.checkpoint import record_measure

        record_measure(args.checkpoint, "offtask", report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    o = report["overall"]
    print(f"{report['sentences']} sentences x 3 synthesizer families = {o['clips']} clips ({report['condition']}, held-out voices)")
    for name, row in [("overall", o), *report["by_group"].items(), *report["by_synth"].items()]:
        print(f"  {name:18} not heard {100 * row['not_heard']:5.1f}%   asked again {100 * row['asked_again']:5.1f}%   answered {100 * row['answered']:5.1f}%")
    languages = report["languages"]
    row = languages["overall"]
    print(f"{languages['sentences']} questions in {len(languages['by_group'])} other languages, eSpeak NG in each language: not heard "
          f"{100 * row['not_heard']:.1f}%   asked again {100 * row['asked_again']:.1f}%   answered {100 * row['answered']:.1f}%")
    for a in report["answered"] + languages["answered"]:
        print(f"  answered: {a['text']!r} ({a['synth']} {a['voice']}): heard {a['heard']} -> {a['answer']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
