"""Gradient attributions of an answer to the image's grid regions, beside the model's own attention (issue 31).

Two methods, both summed to the same grid the attention weighs:

- Integrated Gradients (Sundararajan et al. 2017) from captum (Kokhlikyan et al. 2020) on the pixels, from a white
  canvas (the generator's background: every white pixel gets exactly zero, so all credit lands on the objects),
  target = the answer's logit, IG_STEPS Gauss-Legendre steps. Its completeness gap is sum(attributions) -
  (logit(image) - logit(white)); `Attribution.ig_delta` carries captum's convergence delta for the same call, which
  is the same quantity (a check of our sums).
- Grad-CAM (Selvaraju et al. 2017) on the CNN's last layer (`ImageEncoder.cells`, one cell per grid region): the
  channels weighted by their mean gradient, summed, ReLU'd. Computed here with one backward pass and no hooks, so
  the app's concurrent requests on the one shared model cannot disturb it (captum's LayerGradCam hooks the module);
  tests/test_attribution.py checks it equals captum's LayerGradCam. It also chooses the edits of fusions that have
  no region weights.

Region scores are normalised to sum to 1 over positive mass (IG: the positive part of each region's sum), so
the panel can draw them on the attention's colour scale; a row with no positive mass stays zero (no look). The
raw IG sums stay in `ig_raw`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mmdemo.model import FusionRNN

IG_STEPS = 24  # Gauss-Legendre steps, chosen for the panel's 1.5 s on 2 CPU cores (docs/RESULTS.md, "Does it use where it looks?")
WHITE = 1.0  # the baseline canvas, in the model's [0, 1] input scale


@dataclass(frozen=True)
class Attribution:
    """Per question: region scores (B, R) for IG and Grad-CAM, IG's raw region sums and its completeness check."""

    ig: np.ndarray  # (B, R) positive part, normalised to sum 1 (all zero when nothing is positive)
    ig_raw: np.ndarray  # (B, R) signed sums of the pixel attributions per region
    gradcam: np.ndarray  # (B, R) ReLU'd Grad-CAM, normalised to sum 1
    ig_gap: np.ndarray  # (B,) sum(attributions) - (logit(image) - logit(white)), computed here
    ig_delta: np.ndarray  # (B,) captum's convergence delta for the same call


class _Answering(nn.Module):
    """logits of question b about image b (one image per question), the form captum's methods call."""

    def __init__(self, model: FusionRNN, token_ids: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.model, self.token_ids, self.mask = model, token_ids, mask

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        reps = images.shape[0] // self.token_ids.shape[0]  # captum stacks the IG steps along the batch
        ids, mask = self.token_ids.repeat(reps, 1), self.mask.repeat(reps, 1)
        index = torch.arange(images.shape[0], device=images.device)
        return self.model(images, ids, mask, index).logits.float()


def cell_edges(pixels: int, grid: int) -> np.ndarray:
    """(grid + 1,) pixel edges of the grid's cells along one side (the one split blanking and attribution sums use)."""
    return np.rint(np.arange(grid + 1) * (pixels / grid)).astype(int)


def cell_sums(pixels: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, H, W) -> (B, R): sums over the grid's cells (row-major)."""
    rows, cols = cell_edges(pixels.shape[1], grid), cell_edges(pixels.shape[2], grid)
    return torch.stack([pixels[:, rows[r]:rows[r + 1], cols[c]:cols[c + 1]].sum((1, 2)) for r in range(grid) for c in range(grid)], 1)


def grad_cam(model: FusionRNN, images: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, g, g) Grad-CAM of logit(targets[b]) on the CNN's cells, question b about image b (no hooks: thread-safe)."""
    index = torch.arange(images.shape[0], device=images.device)
    with torch.enable_grad():
        cells = model.image.cells(images).detach().requires_grad_(True)  # (B, C, g, g)
        logits = model.answer(model.encode_regions(model.image.regions(cells)), token_ids, mask, index).logits.float()
        (grad,) = torch.autograd.grad(logits[index, targets].sum(), cells)
    return torch.relu((grad.mean((2, 3), keepdim=True) * cells.detach()).sum(1))


def normalised(scores: torch.Tensor) -> np.ndarray:
    """Positive part, each row summing to 1 (a row with no positive mass stays zero)."""
    pos = scores.clamp(min=0).double()
    return (pos / pos.sum(1, keepdim=True).clamp(min=1e-12)).cpu().numpy()


def attribute(model: FusionRNN, images: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor,
              ig_steps: int = IG_STEPS, gradcam: bool = True) -> Attribution:
    """IG and Grad-CAM of logit(targets[b]) for question b about images[b] (B, 3, H, W) in [0, 1]; ig_steps=0 skips IG
    (its fields are then all zero)."""
    from captum.attr import IntegratedGradients  # imported on first use: captum loads matplotlib

    if model.cfg.image_encoder != "cnn":
        raise ValueError("attributions need the CNN image encoder (its last layer holds the grid regions)")
    grid = model.cfg.grid
    forward = _Answering(model, token_ids, mask)
    images = images.float()
    baseline = torch.full_like(images, WHITE)
    if ig_steps > 0:
        with torch.enable_grad():
            attr, delta = IntegratedGradients(forward).attribute(
                images, baselines=baseline, target=targets, n_steps=ig_steps, method="gausslegendre", return_convergence_delta=True)
        with torch.inference_mode():
            pick = torch.arange(len(targets), device=targets.device)
            ends = forward(images)[pick, targets] - forward(baseline)[pick, targets]
    else:  # Grad-CAM only: no IG figures (zeros)
        attr, delta, ends = torch.zeros_like(images), torch.zeros(len(targets), device=images.device), torch.zeros(len(targets), device=images.device)
    cam = grad_cam(model, images, token_ids, mask, targets) if gradcam else None
    raw = cell_sums(attr.sum(1).detach(), grid)  # (B, R)
    gap = attr.detach().flatten(1).sum(1) - ends
    cam_regions = normalised(cam.detach().flatten(1)) if cam is not None else np.zeros((len(targets), grid * grid))
    return Attribution(normalised(raw), raw.double().cpu().numpy(), cam_regions, gap.double().cpu().numpy(),
                       delta.detach().double().cpu().numpy())
