"""Turning raw inputs into tensors: padded token ids, padded log-mel frames and image batches."""

from __future__ import annotations

import numpy as np
import torch


def pad_token_ids(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists -> token_ids (B, T) and a bool mask (B, T)."""
    longest = max(len(row) for row in ids)
    token_ids = torch.zeros(len(ids), longest, dtype=torch.long)
    mask = torch.zeros(len(ids), longest, dtype=torch.bool)
    for i, row in enumerate(ids):
        token_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
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
