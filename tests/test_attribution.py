"""Attributions (mmdemo/attribution.py): IG's completeness against captum's delta and the model's own logits, credit only
where the image differs from the white baseline, Grad-CAM on the grid, and the Predictor's entry point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdemo.attribution import attribute, cell_sums, grad_cam
from mmdemo.inference import Predictor
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.text import tokenize


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(device="cpu")


def _batch(predictor: Predictor, sample: soc.Sample, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, _ = tokenize([q.text for q in sample.questions[:n]], predictor.cfg.max_tokens)
    token_ids, mask = pad_token_ids(ids)
    images = images_to_tensor(np.stack([sample.image] * n))
    with torch.inference_mode():
        logits = predictor.model(images, token_ids, mask, torch.arange(n)).logits
    return images, token_ids, mask, logits


def test_integrated_gradients_completeness_gap_is_captums_delta(predictor: Predictor) -> None:
    sample = soc.generate("val", 1)[0]
    images, ids, mask, logits = _batch(predictor, sample, 4)
    target = logits.argmax(1)
    a = attribute(predictor.model, images, ids, mask, target)
    np.testing.assert_allclose(a.ig_gap, a.ig_delta, atol=1e-4)  # our gap is captum's convergence delta
    with torch.inference_mode():
        white = predictor.model(torch.ones_like(images), ids, mask, torch.arange(4)).logits
    change = (logits - white)[torch.arange(4), target].double().numpy()
    np.testing.assert_allclose(a.ig_raw.sum(1) - a.ig_gap, change, rtol=1e-4, atol=1e-4)  # sum(attr) = change + gap


def test_credit_only_where_the_image_differs_from_white(predictor: Predictor) -> None:
    sample = soc.generate("val", 1)[0]
    images, ids, mask, logits = _batch(predictor, sample, 2)
    a = attribute(predictor.model, images, ids, mask, logits.argmax(1))
    empty = ~soc.region_masks(list(sample.scene.objects), predictor.cfg.grid).astype(bool)  # regions no object touches
    blank = (images[0] == 1.0).all(0)  # (H, W) white pixels
    per_region = cell_sums(blank[None].float(), predictor.cfg.grid)[0].numpy()
    cells = per_region == per_region.max()  # regions that are white all over
    assert cells.any() and (np.abs(a.ig_raw[:, cells]) == 0).all()
    assert empty[cells].all()
    for scores in (a.ig, a.gradcam):
        assert (scores >= 0).all() and np.allclose(scores.sum(1), 1.0)


def test_grad_cam_is_captums_layer_grad_cam_without_its_hooks(predictor: Predictor) -> None:
    from captum.attr import LayerGradCam

    sample = soc.generate("val", 1)[0]
    images, ids, mask, logits = _batch(predictor, sample, 4)
    target = logits.argmax(1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return predictor.model(x, ids, mask, torch.arange(4)).logits

    theirs = LayerGradCam(forward, predictor.model.image.mix).attribute(images, target=target, relu_attributions=True)
    ours = grad_cam(predictor.model, images, ids, mask, target)
    torch.testing.assert_close(ours, theirs[:, 0], rtol=1e-4, atol=1e-6)


def test_integrated_gradients_gap_shrinks_with_more_steps(predictor: Predictor) -> None:
    """The gap is the integral's error: 8 steps leave a larger one than 96 (median over 20 questions)."""
    sample = soc.generate("val", 1)[0]
    images, ids, mask, logits = _batch(predictor, sample, 20)
    target = logits.argmax(1)
    coarse, fine = (np.median(np.abs(attribute(predictor.model, images, ids, mask, target, ig_steps=n, gradcam=False).ig_gap)) for n in (8, 96))
    assert fine < coarse


def test_cell_sums_cover_every_pixel_once() -> None:
    x = torch.rand(2, 75, 75)
    sums = cell_sums(x, 5)
    assert sums.shape == (2, 25) and torch.allclose(sums.sum(1), x.sum((1, 2)))


def test_predictor_attributes_one_answer_and_refuses_what_it_cannot(predictor: Predictor) -> None:
    image = soc.generate("val", 1)[0].image
    a = predictor.attribute(image, "What shape is the red object?", "circle")
    assert a.ig.shape == (1, 25) and a.gradcam.shape == (1, 25)
    with pytest.raises(ValueError):
        predictor.attribute(image, "What shape is the red object?", "banana")
