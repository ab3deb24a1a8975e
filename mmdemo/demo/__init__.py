"""The work behind each tab of app.py, one module per room; plain values in and out, no gradio.

scenes      generated scenes: their state and pixel keys, the examples, the editor
views       what playback and scrubbing show at a step: overlay, token strip, object trace, step maps
ask         a typed question: the answer, the truth, the step views
voice       a spoken question: speak, recordings, ask by voice
photos      the Photos tab: match, how sure to be, search
compare     the Compare tab
faith       the Ask tab's "Does it use what it looks at?" panel: attention beside attributions, edits with truth
model_card  the Model card and the fixed texts
page        the page's CSS and scripts

Errors a person can fix are `mmdemo.errors.InputError`; app.py shows them. An output a room leaves as it is
is None in its result (app.py sends nothing for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmdemo.demo.ask import Ask
from mmdemo.demo.compare import Compare
from mmdemo.demo.faith import Faith
from mmdemo.demo.photos import Photos
from mmdemo.demo.scenes import EXAMPLE_QUESTIONS, EXAMPLE_SEEDS, Scenes, example_scene
from mmdemo.demo.voice import SPOKEN_EXAMPLES, Voice, spoken_examples
from mmdemo.registry import Registry
from mmdemo.tasks.sort_of_clevr import data as soc


@dataclass
class Rooms:
    """Every room over one registry of checkpoints."""

    registry: Registry
    scenes: Scenes
    ask: Ask
    voice: Voice
    photos: Photos
    compare: Compare
    faith: Faith

    @classmethod
    def create(cls, registry: Registry, audio_dir: Path) -> Rooms:
        """audio_dir: where "Speak this question" writes its recordings."""
        scenes = Scenes()
        ask = Ask(registry, scenes)
        return cls(registry, scenes, ask, Voice(registry, ask, audio_dir), Photos(registry), Compare(registry, scenes), Faith(ask, scenes))

    def warm(self, checkpoint: str | None, photo_checkpoint: str | None, spoken_checkpoint: str | None = None) -> None:
        """Run every model the app shows first once (model, text encoder, figures, pictures), so the first click is fast."""
        from mmdemo.demo.views import show_step

        image = soc.render(example_scene(EXAMPLE_SEEDS[0]))
        if checkpoint is not None:
            view = self.ask.ask(image, "Quick question: what shape is the object closest to the red one?", checkpoint, None).view
            show_step(view, 1, 1)
            self.faith.panel(image, EXAMPLE_QUESTIONS[0], checkpoint, None)  # captum's first import, and its backward pass
        examples = spoken_examples()
        if spoken_checkpoint is not None and examples:
            self.voice.ask(image, str(SPOKEN_EXAMPLES / examples[0]["file"]), spoken_checkpoint, None, None)
        if photo_checkpoint is not None:
            from mmdemo.photos import gallery

            self.photos.match(gallery()[0].pixels, "a cat on a sofa", photo_checkpoint)
