"""Fusion options the photo models use: the pooled image beside the attention, and a prior on hop 1."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from mmdemo.config import ModelConfig
from mmdemo.model.fusion import make_fusion


def test_attention_global_passes_the_pooled_image() -> None:
    cfg = tiny_config(attention_global=True)
    fusion = make_fusion(cfg)
    memory = fusion.prepare(torch.randn(3, cfg.num_regions, cfg.image_channels))
    token, state = torch.randn(3, cfg.text_dim), torch.randn(3, cfg.hidden_dim)
    fused, w = fusion(token, state, memory)
    e, d = cfg.text_dim, cfg.image_channels
    assert fused.shape == (3, fusion.out_dim) == (3, e + (cfg.num_hops + 1) * d)
    torch.testing.assert_close(fused[:, :e], token)
    torch.testing.assert_close(fused[:, e : e + d], memory.summary)
    plain = make_fusion(tiny_config())
    plain.load_state_dict(fusion.state_dict())  # same parameters: the option adds no weights
    fused_plain, w_plain = plain(token, state, memory)
    torch.testing.assert_close(torch.cat([fused[:, :e], fused[:, e + d :]], dim=-1), fused_plain)
    torch.testing.assert_close(w, w_plain)


def test_prior_steers_hop_one_only() -> None:
    cfg = tiny_config()
    fusion = make_fusion(cfg)
    memory = fusion.prepare(torch.randn(2, cfg.num_regions, cfg.image_channels))
    token, state = torch.randn(2, cfg.text_dim), torch.randn(2, cfg.hidden_dim)
    _, w = fusion(token, state, memory)
    prior = torch.zeros(2, cfg.num_regions)
    prior[0, 3], prior[1, 17] = 50.0, 50.0
    _, w_prior = fusion(token, state, memory, prior)
    assert w_prior[0, 0, 3] > 0.99 and w_prior[1, 0, 17] > 0.99  # hop 1 goes where the prior points
    assert w_prior[:, 1].max() < 0.5  # hop 2 is not pushed by it (untrained scores are near uniform)
    assert not torch.allclose(w[:, 0], w_prior[:, 0])
    torch.testing.assert_close(w_prior.sum(-1), torch.ones(2, cfg.num_hops))
    _, w_flat = fusion(token, state, memory, torch.full((2, cfg.num_regions), 7.0))
    torch.testing.assert_close(w_flat, w)  # a constant prior changes nothing: only differences between regions count


def test_attention_options_need_attention() -> None:
    with pytest.raises(ValueError, match="attention_global"):
        ModelConfig(fusion="concat", attention_global=True)


def test_bridge_attention_needs_the_bridge_and_attention() -> None:
    with pytest.raises(ValueError, match="bridge_attention"):
        ModelConfig(bridge_attention=True)
    with pytest.raises(ValueError, match="bridge_attention"):
        ModelConfig(text_encoder="minilm", image_encoder="efficientnet_lite0", image_size=224, grid=7, label_bridge=True, fusion="concat", bridge_attention=True)
    ModelConfig(text_encoder="minilm", image_encoder="efficientnet_lite0", image_size=224, grid=7, label_bridge=True, bridge_attention=True)


def test_pruned_options_load_only_with_the_value_every_checkpoint_has() -> None:
    """Older config.json files name the pruned options (attention, region_features): the kept value loads, others are refused."""
    base = ModelConfig().to_dict()
    assert ModelConfig.from_dict({**base, "attention": "additive", "region_features": "raw"}) == ModelConfig()
    for key, value in (("attention", "dot"), ("region_features", "semantic")):
        with pytest.raises(ValueError, match=f"{key} other than .* was pruned"):
            ModelConfig.from_dict({**base, key: value})


def test_the_fusion_knows_whether_it_weighs_regions() -> None:
    """ModelConfig.has_region_attention: the one question training, evaluation and the app ask of a fusion."""
    from conftest import tiny_config

    from mmdemo.config import FUSIONS
    from mmdemo.model.fusion import AttentionFusion, make_fusion

    assert [tiny_config(fusion=f).has_region_attention for f in FUSIONS] == [isinstance(make_fusion(tiny_config(fusion=f)), AttentionFusion) for f in FUSIONS]
    assert [f for f in FUSIONS if tiny_config(fusion=f).has_region_attention] == ["attention"]
