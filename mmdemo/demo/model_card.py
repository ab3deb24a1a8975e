"""The Model card: plain words, limits and a glossary; its figures are read from the checkpoints' files."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, read_metrics
from mmdemo.results import paper_table, pct, results_table

MODEL_CARD = """
### What this is
A small recurrent network (an RNN) reads the question one piece of a word at a time. At every step it also
looks at the picture; how it combines the two is the **fusion**. `sum` and `concat` mix in one average of
the whole picture, so they cannot look anywhere in particular. `attention` chooses where to look in a 5 x 5
grid, twice per step: **hop 1 (find)** looks for the object the question names, **hop 2 (relate)** looks from
there to the object the answer is about (the closest or furthest one, or those of the same shape). The
pictures in the Ask tab are those looks, step by step. The default reads strictly left to right, so before
the question names its object both hops spread evenly over the picture.

It learned from generated scenes, where the right answer and every object's place are known; while learning
it was also told where the named and the answer object are. When it answers it gets no help: how often it
looks at the right object is measured on scenes it never saw (**grounding**, in the table below).

The **Photos** tab uses another model, which says whether a sentence describes a photo. Its answer is a
probability calibrated on real photos{photo_accuracy}; it also
shows where each word of the sentence looked.

### Limits
- The scene models know only the generated scenes (up to six coloured squares and circles on white). The app
  says when an image does not look like one and shows the answer only greyed.
- Questions outside the six kinds (other attributes, greetings, other languages, nonsense) are flagged by a
  measured detector and the answer is shown greyed.{heldout}
- `sum` and `concat` have no attention: their maps are even by construction.{faithful}

### Words used here
- **token**: the piece of text the model reads in one step (a word, or part of a rare word: "thingamajig" is "thing ##ama ##ji ##g").
- **step**: one token read; the RNN updates its memory once per step.
- **fusion**: how the picture is combined with the text at each step: `sum`, `concat` or `attention`.
- **hop**: one look at the picture; the attention models look twice per step (find, then relate).
- **reads word by word** (causal): step t knows only the tokens up to t. **Reads the whole question first**: every
  step already knows the whole sentence, so its looks do not show the reading as it happens.
- **grounding**: the share of test questions about one object where hop 1's strongest look, at any step, lands on
  that object.
- **training budget**: how long a model was trained (full: 16 passes over the data; brief: 2).
- **frozen encoders**: the pretrained text reader (MiniLM) and photo reader (EfficientNet-Lite0) come from pip
  packages and are not changed by training.
- **label bridge**: for photos, the photo reader's guesses of what is in each region (ImageNet's 1,000 object names)
  turned into the text reader's vectors, so words and regions can be compared.
- **calibrated**: a probability of 70% is right about 70% of the time; **ECE** measures how far from that it is.
- **ROC AUC**: the chance that a true pair scores above a false one (0.5 is guessing, 1 is perfect).
"""
PAPER = "Published results on the original Sort-of-CLEVR (questions as codes, not sentences), for scale:\n\n"


def photo_accuracy_clause(calibration: Path) -> str:
    """', right 84.4% of the time on photos held out from every choice' from calibration.json ('' without the file)."""
    try:
        accuracy = json.loads(calibration.read_text())["test"]["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f" (right {pct(accuracy)} of the time on photos held out from every choice)"


def heldout_sentence(metrics: dict | None) -> str:
    """The held-out rewordings' sentence from the default's metrics.json (`evaluate --wording heldout --write`); '' without it."""
    per = ((metrics or {}).get("heldout_wording") or {}).get("per_wording") or {}
    if not per:
        return ""
    weakest = min(per, key=per.get)
    return (f" Rewordings never seen in training mostly work: each of {len(per)} held-out ones gets {math.floor(100 * per[weakest])}% or "
            f"more on the test scenes; the weakest is a \"{weakest.split(':', 1)[0]}\" question ({pct(per[weakest])}).")


def faithful_sentence(metrics: dict | None) -> str:
    """Whether the default uses where it looks, from its metrics.json (the faithfulness command); '' without it. The
    counting caveat only when the file shows it: most removals of an ignored object raise the count by one."""
    f = (metrics or {}).get("faithfulness") or {}
    overall, count = f.get("overall"), (f.get("per_subtype") or {}).get("count") or {}
    if not overall:
        return ""
    text = ("\n- Where it looks is mostly where its answer comes from: when the generator changes the object it looked at, the "
            f"answer follows the new truth {pct(overall['follows'])} of the time; when it moves an object it ignored, the answer stays "
            f"{pct(overall['ignores'])}.")
    shifts = count.get("count_shift_remove") or {}
    up = shifts.get("+1", 0)
    if shifts and up > sum(shifts.values()) / 2:
        text += (f" Except for counting: removing an object it ignored, which leaves the true count as it is, raises its count by one "
                 f"in {pct(up / sum(shifts.values()))} of cases, as if it counted the *other* shape and subtracted from six (every "
                 "training scene has six objects).")
    return text + " The **Does it use what it looks at?** panel under each answer lets you try it."


def model_card_text(default: Path = DEFAULT, calibration: Path | None = None) -> str:
    """The Model card's plain words, with the figures of the default and the photo model filled in."""
    if calibration is None:
        from mmdemo.tasks.matching.calibrate import CALIBRATION as calibration
    metrics = read_metrics(default)
    return MODEL_CARD.format(photo_accuracy=photo_accuracy_clause(calibration), heldout=heldout_sentence(metrics), faithful=faithful_sentence(metrics))


def benchmark_markdown() -> str:
    """The results table from each checkpoint's metrics.json."""
    return "### Benchmark (test split, from each checkpoint's metrics.json)\n" + results_table()


def paper_markdown() -> str:
    """The published Sort-of-CLEVR results, for scale."""
    return PAPER + paper_table()
