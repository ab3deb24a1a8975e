"""Model behaviour: attention is a distribution, padding is inert, the model can learn."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mmdemo.config import CELLS, FUSIONS
from mmdemo.model import FusionRNN
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch
from mmdemo.text import load_minilm, tokenize


@pytest.fixture(scope="module")
def batch() -> QuestionBatch:
    samples = soc.generate("train", 4, seed=11, wording="train")
    return QuestionBatch(np.stack([s.image for s in samples]), [s.questions for s in samples], tiny_config())


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes_and_attention_rows_sum_to_one(batch: QuestionBatch, cell: str, fusion: str) -> None:
    cfg = tiny_config(cell=cell, fusion=fusion)
    out = FusionRNN(cfg).eval()(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
    b, t = batch.token_ids.shape
    hops = cfg.num_hops if cfg.has_region_attention else 1
    assert out.logits.shape == (b, len(cfg.labels))
    assert out.region_attention.shape == (b, t, cfg.num_regions)
    assert out.hop_attention.shape == (b, t, hops, cfg.num_regions)
    torch.testing.assert_close(out.region_attention.sum(-1), torch.ones(b, t))
    torch.testing.assert_close(out.hop_attention.sum(-1), torch.ones(b, t, hops))
    torch.testing.assert_close(out.step_attention.sum(-1), torch.ones(b))
    assert (out.step_attention[~batch.token_mask] == 0).all()
    assert out.loss is not None and torch.isfinite(out.loss)
    if cfg.has_region_attention:  # real attention is not uniform
        assert out.region_attention.std(-1).mean() > 0


@pytest.mark.parametrize("cell", CELLS)
def test_padding_does_not_change_predictions(cell: str) -> None:
    cfg = tiny_config(cell=cell, text_encoder="learned")
    model = FusionRNN(cfg).eval()
    image = images_to_tensor(soc.generate("test", 1)[0].image[None])
    ids, _ = tokenize(["What shape is the red object?"], cfg.max_tokens)
    alone = model(image, *pad_token_ids(ids))
    longer, _ = tokenize(["How many objects have the same shape as the green object in this image?"], cfg.max_tokens)
    padded = model(image, *pad_token_ids([ids[0], longer[0]]), image_index=torch.tensor([0, 0]))
    n = len(ids[0])
    torch.testing.assert_close(padded.logits[:1], alone.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded.region_attention[:1, :n], alone.region_attention, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded.step_attention[:1, :n], alone.step_attention, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_training_reads_only_the_questions_still_running_with_the_same_loss_and_gradients(batch: QuestionBatch, cell: str) -> None:
    """In training, typed questions take the packed path (each step runs on the questions not yet ended);
    answering takes the masked loop. Same outputs, loss and gradients either way."""
    assert batch.token_mask.sum(1).unique().numel() > 1  # questions of different lengths
    model = FusionRNN(tiny_config(cell=cell))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def run(training: bool) -> tuple:
        model.zero_grad()
        model.train(training)
        for m in norms:  # the image encoder's batch norm in one mode for both paths
            m.eval()
        out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    packed, packed_grads = run(True)
    masked, masked_grads = run(False)
    torch.testing.assert_close(packed.logits, masked.logits, rtol=1e-5, atol=1e-6)
    real = batch.token_mask[:, :, None, None]
    torch.testing.assert_close(packed.hop_attention * real, masked.hop_attention * real, rtol=1e-5, atol=1e-6)
    assert packed_grads.keys() == masked_grads.keys()
    for name, grad in packed_grads.items():
        if name != "step_score.bias":  # softmax over steps ignores it: its gradient is rounding noise
            torch.testing.assert_close(grad, masked_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_minilm_states_are_padding_invariant() -> None:
    cfg = tiny_config()
    model = FusionRNN(cfg).eval()
    ids, _ = tokenize(["Is the blue thing at the top?", "What shape is the object furthest from the yellow object?"], 32)
    token_ids, mask = pad_token_ids(ids)
    together = model.text.frozen_features(token_ids, mask)
    model.text.clear_cache()
    alone = model.text.frozen_features(*pad_token_ids(ids[:1]))
    torch.testing.assert_close(together[:1, : len(ids[0])], alone, rtol=1e-4, atol=1e-4)


def test_length_buckets_run_minilm_without_padding_and_match_one_padded_batch() -> None:
    model = FusionRNN(tiny_config()).eval()
    texts = ["Is the blue thing at the top?", "Is the red thing at the top?", "What shape is the object furthest from the yellow object?"]
    ids, _ = tokenize(texts, 32)
    token_ids, mask = pad_token_ids(ids)
    padded = model.text.frozen_features(token_ids, mask)
    model.text.clear_cache()
    model.text.length_buckets = True
    masks: list[torch.Tensor] = []
    minilm = load_minilm(causal=model.cfg.causal)
    hook = minilm.register_forward_pre_hook(lambda _m, _a, kwargs: masks.append(kwargs["attention_mask"]), with_kwargs=True)
    try:
        bucketed = model.text.frozen_features(token_ids, mask)
    finally:
        hook.remove()
    lengths = Counter(len(i) for i in ids)  # two questions of one length, one of another
    assert sorted(tuple(m.shape) for m in masks) == sorted((n, length) for length, n in lengths.items())  # a batch per length
    assert all(bool(m.all()) for m in masks)  # no padding
    torch.testing.assert_close(bucketed, padded, rtol=1e-4, atol=1e-4)


def test_image_reuse_equals_per_question_images(batch: QuestionBatch) -> None:
    model = FusionRNN(tiny_config()).eval()
    shared = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index)
    repeated = model(batch.images[batch.image_index], batch.token_ids, batch.token_mask)
    torch.testing.assert_close(shared.logits, repeated.logits, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", FUSIONS)
def test_overfits_one_batch(batch: QuestionBatch, fusion: str) -> None:
    model = FusionRNN(tiny_config(fusion=fusion, hidden_dim=48)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    model.eval()
    out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
    assert out.loss.item() < 0.1 * first
    assert (out.logits.argmax(-1) == batch.targets).float().mean() > 0.95


def _where(module: torch.nn.Module) -> set[tuple[str, torch.dtype]]:
    """(device type, dtype) of every floating parameter and buffer."""
    return {(t.device.type, t.dtype) for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()}


@pytest.mark.parametrize("text_encoder", ["minilm", "minilm_static"])
def test_every_encoder_moves_with_the_model_and_minilm_stays_shared_per_device(batch: QuestionBatch, text_encoder: str) -> None:
    """The frozen MiniLM follows model.to(...) (one shared copy per device and dtype, never in the state dict), its
    states cache too; a model left behind keeps the CPU copy and its answers."""
    cfg = tiny_config(text_encoder=text_encoder)
    kept, moved = FusionRNN(cfg).eval(), FusionRNN(cfg).eval()
    moved.load_state_dict(kept.state_dict())
    args = (batch.images, batch.token_ids, batch.token_mask, batch.image_index)
    with torch.no_grad():
        before = kept(*args).logits
        moved(*args)  # fills the states cache on the CPU
        moved.to(torch.float64)
        assert _where(moved) == _where(moved.text.minilm) == {("cpu", torch.float64)}
        assert all(s.dtype == torch.float64 for s in moved.text._cache.values())
        torch.testing.assert_close(moved(batch.images.double(), *args[1:]).logits.float(), before, atol=1e-4, rtol=1e-4)
        assert _where(kept.text.minilm) == {("cpu", torch.float32)} and load_minilm(cfg.causal and text_encoder == "minilm") is kept.text.minilm
        torch.testing.assert_close(kept(*args).logits, before, atol=0, rtol=0)
    assert not any("minilm" in k for k in moved.state_dict())  # checkpoints keep their keys: MiniLM is never stored
    meta = FusionRNN(cfg).to("meta")
    assert _where(meta) | _where(meta.text.minilm) == {("meta", torch.float32)}
