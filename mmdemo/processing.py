"""Raw inputs to tensors, the one way for serving and training alike: image decoding (checked, bounded in
memory), square padding and resizing, padded token ids, padded log-mel frames, image batches."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from mmdemo.errors import InputError
from mmdemo.limits import MAX_FILE_BYTES, MAX_PIXELS, WORK_SIDE, too_large

__all__ = ["MAX_PIXELS", "ImageInput", "images_to_tensor", "load_image", "pad_frames", "pad_token_ids", "prepare_image"]
ImageInput = Image.Image | np.ndarray | str | Path | bytes


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode (palette, alpha, 16-bit, grayscale, CMYK) -> RGB; transparency becomes white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.array(im, dtype=np.float64)
        hi = arr.max() if arr.size and arr.max() > 255 else 255.0
        arr *= 255.0 / hi  # in place: one float copy of the image, not three
        im = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8), "L")
    if im.mode == "P" or im.mode in ("LA", "La", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def _reduction(size: tuple[int, int]) -> int:
    """The whole factor that brings the longest side down to at most WORK_SIDE (1: leave it)."""
    return -(-max(size) // WORK_SIDE)


def _shrink(im: Image.Image) -> Image.Image:
    """Box-reduce an image longer than WORK_SIDE by a whole factor, in its own mode (before any conversion).

    What the model sees is at most 224 px, so nothing is lost; every image up to WORK_SIDE is untouched."""
    k = _reduction(im.size)
    if k <= 1:
        return im
    if im.mode == "1":
        im = im.convert("L")
    size = (-(-im.width // k), -(-im.height // k))
    if im.mode in ("P", "PA") or im.mode.startswith("I;16"):  # palette indices and 16-bit modes cannot be averaged
        return im.resize(size, Image.Resampling.NEAREST)
    # A band of rows at a time: reduce() of an RGBA image would first make a premultiplied copy of all of it.
    out = Image.new(im.mode, size)
    rows = k * max(1, 256 // k)  # source rows per band, a multiple of k: the same pixels as one reduce(k)
    for y in range(0, im.height, rows):
        out.paste(im.crop((0, y, im.width, min(y + rows, im.height))).reduce(k), (0, y // k))
    out.info.update(im.info)  # EXIF orientation, transparency
    return out


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    """A numeric array -> uint8 (floats in [0, 1] are scaled by 255), a band of rows at a time."""
    scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
    out = np.empty(arr.shape, dtype=np.uint8)
    rows = max(1, 2**20 // max(1, arr[0].size))  # ~8 MB of float64 at a time, whatever the array's size
    for i in range(0, arr.shape[0], rows):
        out[i : i + rows] = np.clip(arr[i : i + rows] * scale, 0, 255)
    return out


def _from_array(arr: np.ndarray) -> Image.Image:
    """An HxW, HxWx3 or HxWx4 array -> PIL image; the shape and size are checked before any copy."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise InputError(f"Image array must be HxW, HxWx3 or HxWx4, got shape {arr.shape}.")
    if (problem := too_large(arr.shape[1], arr.shape[0])) is not None:
        raise InputError(problem)
    if arr.dtype.kind not in "buif":
        raise InputError(f"Image array must hold numbers, got dtype {arr.dtype}.")
    return Image.fromarray(arr if arr.dtype == np.uint8 else _array_to_uint8(arr))


def _read_bytes(image: str | Path | bytes | bytearray) -> bytes:
    """The bytes of an image file or buffer, refused above MAX_FILE_BYTES before reading."""
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    else:
        path = Path(image)
        if not path.is_file():
            raise InputError(f"Image file not found: {path.name or path}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"Image file is over {MAX_FILE_BYTES // 2**20} MB.")
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"Image file is over {MAX_FILE_BYTES // 2**20} MB.")
    return data


def _decode(data: bytes) -> Image.Image:
    """Decode the first frame; the size is checked from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if (problem := too_large(*im.size)) is not None:
                raise InputError(problem)
            im = next(iter(ImageSequence.Iterator(im)))  # first frame of an animation
            if im.format == "JPEG" and (k := _reduction(im.size)) > 1:
                im.draft(im.mode, (im.width // k, im.height // k))  # decode at 1/2, 1/4 or 1/8 scale
            im.load()
            return im
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"Not a readable image ({type(e).__name__}).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise InputError(f"The image file is damaged or unsupported: {str(e)[:120]}") from None


def load_image(image: ImageInput) -> Image.Image:
    """Open and check an image from a PIL image, an array, a path or bytes -> RGB, at most WORK_SIDE px; raises InputError."""
    if image is None:
        raise InputError("No image given: upload an image or pick an example.")
    if isinstance(image, np.ndarray):
        im = _from_array(image)
    elif isinstance(image, Image.Image):
        im = image
    elif isinstance(image, (str, Path, bytes, bytearray)):
        im = _decode(_read_bytes(image))
    else:
        raise InputError(f"Unsupported image type: {type(image).__name__}.")
    if (problem := too_large(*im.size)) is not None:
        raise InputError(problem)
    if min(im.size) < 1:
        raise InputError("Image is empty.")
    try:
        im = ImageOps.exif_transpose(_shrink(im))
        return _to_rgb(im)
    except (OSError, ValueError) as e:
        raise InputError(f"The image could not be decoded: {str(e)[:120]}") from None


def prepare_image(im: Image.Image, size: int) -> np.ndarray:
    """Pad to a square with white (keeps geometry), resize to size x size -> (size, size, 3) uint8.

    An image longer than WORK_SIDE is box-reduced first, so the padded square never exceeds WORK_SIDE^2."""
    im = _shrink(im)
    w, h = im.size
    if w != h:
        side = max(w, h)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(im, ((side - w) // 2, (side - h) // 2))
        im = square
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def pad_token_ids(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists -> token_ids (B, T) and a bool mask (B, T)."""
    lengths = [len(row) for row in ids]
    longest = max(lengths)
    token_ids = torch.tensor([[*row, *[0] * (longest - n)] for row, n in zip(ids, lengths)], dtype=torch.long)
    mask = torch.arange(longest)[None] < torch.tensor(lengths)[:, None]
    return token_ids, mask


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float().div_(255.0)


def pad_frames(frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (L_i, M) log-mel arrays -> frames (B, L, M) float32 and a bool mask (B, L)."""
    longest = max(len(f) for f in frames)
    out = torch.zeros(len(frames), longest, frames[0].shape[1], dtype=torch.float32)
    mask = torch.zeros(len(frames), longest, dtype=torch.bool)
    for i, f in enumerate(frames):
        out[i, : len(f)] = torch.from_numpy(np.asarray(f, dtype=np.float32))
        mask[i, : len(f)] = True
    return out, mask
