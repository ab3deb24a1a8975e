"""Example photos for the real-image model: scikit-image's bundled sample photos (public domain / CC0).

Only loaders that read files shipped inside the scikit-image wheel are used (some others download).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# (loader name in skimage.data, caption shown in the app)
PHOTOS = (
    ("chelsea", "Chelsea the cat"),
    ("astronaut", "astronaut Eileen Collins"),
    ("coffee", "a cup of coffee"),
    ("rocket", "a rocket on its launch pad"),
    ("stereo_motorcycle", "a motorcycle"),
    ("camera", "a man with a camera"),
    ("coins", "old coins"),
    ("moon", "the surface of the moon"),
    ("horse", "a horse (silhouette)"),
    ("hubble_deep_field", "galaxies, Hubble deep field"),
    ("clock", "a clock"),
    ("page", "a page of printed text"),
)

# The Photos tab's examples: (photo, sentence, does the sentence describe the photo?). The shipped matcher must get
# each right (tests/test_photos.py); calibration.json lists what it says of each.
EXAMPLES = (
    ("chelsea", "a cat", True),
    ("astronaut", "an astronaut", True),
    ("coffee", "a cup of coffee", True),
    ("rocket", "a rocket", True),
    ("stereo_motorcycle", "a motorcycle", True),
    ("camera", "a red car", False),
)


@dataclass(frozen=True)
class Photo:
    name: str
    caption: str
    pixels: np.ndarray  # (H, W, 3) uint8, the original photo


def _load(name: str) -> np.ndarray:
    from skimage import data

    arr = getattr(data, name)()
    if isinstance(arr, tuple):  # stereo pairs: the left view
        arr = arr[0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3]).astype(np.uint8)


@lru_cache(maxsize=1)
def gallery() -> tuple[Photo, ...]:
    """The example photos, loaded once per process."""
    return tuple(Photo(name, caption, _load(name)) for name, caption in PHOTOS)
