"""Every input limit in one place: the app, the CLI and the Python API refuse more than this, before allocating."""

from __future__ import annotations

MAX_SIDE = 8192  # px, an image's longest side
MAX_PIXELS = 25_000_000  # width x height (decoding needs up to 4 bytes a pixel: at most 100 MB)
MAX_FILE_BYTES = 20 * 2**20  # an image file, an upload, or the decoded bytes of a data: URL (gradio's "20mb")
MAX_REQUEST_BYTES = MAX_FILE_BYTES * 4 // 3 + 2**20  # a request body other than an upload: a data: URL image fits
MAX_TEXT_CHARS = 100_000  # a question or sentence; longer is refused (the model reads its first max_tokens tokens)
MAX_AUDIO_SECONDS = 15.0  # a spoken question; longer is cut to its start, with a notice (a config may set its own)
WORK_SIDE = 2048  # px: larger images are box-reduced by a whole factor to at most this before any conversion
MAX_SEED = 2**32 - 1  # the app's scene seed: 0..MAX_SEED, or -1 for a random one
MAX_JSON_BYTES = 2**20  # config.json and metrics.json of a checkpoint
DRAIN_SECONDS = 25.0  # on SIGTERM accepted requests get this long to finish (MMDEMO_DRAIN_SECONDS; under a 30 s kill)


def too_large(width: int, height: int) -> str | None:
    """Why an image of this size is refused (a message a person can act on), or None when it is fine."""
    if max(width, height) > MAX_SIDE:
        return f"Image is too large ({width}x{height}): the longest side may be {MAX_SIDE:,} px."
    if width * height > MAX_PIXELS:
        return f"Image is too large ({width}x{height}): the limit is {MAX_PIXELS:,} pixels."
    return None
