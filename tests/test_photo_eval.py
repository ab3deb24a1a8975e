"""Photo-domain measures: the zero-shot label bridge and the gallery metrics."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from mmdemo.experiments.photo_grid import BASE
from mmdemo.processing import pad_token_ids
from mmdemo.tasks.matching.photo_eval import ZeroShotBridge, gallery_metrics
from mmdemo.text import tokenize

TABBY, SPORTS_CAR = 281, 817  # ImageNet class indices


def test_zero_shot_prefers_the_sentence_that_names_the_class() -> None:
    from mmdemo.model.pretrained import label_embeddings

    zs = ZeroShotBridge(BASE)
    memory = label_embeddings()[[TABBY, SPORTS_CAR]]  # two "pictures": one ImageNet sees as a tabby, one as a sports car
    ids, _ = tokenize(["a cat", "a red car"], BASE.max_tokens)
    tokens, mask = pad_token_ids([ids[0], ids[0], ids[1], ids[1]])
    logits = zs.answer(memory, tokens, mask, torch.tensor([0, 1, 0, 1])).logits
    cos = logits[:, 0]
    assert torch.equal(logits[:, 1], -cos) and bool((cos.abs() <= 1.0001).all())
    assert cos[0] > cos[1] and cos[3] > cos[2]  # "a cat" fits the tabby, "a red car" the sports car


class _Fake:
    """Scores caption c against photo p: `right` -> 1 when p == c else 0; constant otherwise."""

    def __init__(self, right: bool) -> None:
        self.right, self.cfg = right, SimpleNamespace(max_tokens=32)

    def eval(self) -> None:
        pass

    def encode_features(self, features: torch.Tensor) -> torch.Tensor:
        return torch.arange(features.shape[0])

    def answer(self, memory, tokens, mask, image_index):
        n = len(memory)
        caption = torch.arange(n * n) // n  # gallery_metrics lays pairs out caption by caption
        score = (caption == image_index).float() if self.right else torch.zeros(n * n)
        return SimpleNamespace(logits=torch.stack([score, -score], dim=-1))


def test_gallery_metrics_perfect_and_constant_scorers() -> None:
    perfect, constant = gallery_metrics(_Fake(True)), gallery_metrics(_Fake(False))
    assert perfect["gallery_roc_auc"] == 1.0 and perfect["gallery_recall_at_1"] == 1.0
    n = int(perfect["gallery_pairs"] ** 0.5)
    assert constant["gallery_roc_auc"] == 0.5 and abs(constant["gallery_recall_at_1"] - round(1 / n, 4)) < 1e-4


def test_photo_domain_table_reports_each_measured_model_and_zero_shot(tmp_path) -> None:
    import json

    from mmdemo.experiments.photo_grid import ZERO_SHOT, photo_domain_table

    (tmp_path / "match").mkdir()
    (tmp_path / "sum").mkdir()
    measured = {"photos_accuracy": 0.7, "photos_roc_auc": 0.75, "photos_recall_at_1": 0.1, "photos_retrieval_pool": 100, "gallery_roc_auc": 0.6, "gallery_recall_at_1": 0.25, "photo_cases_right": 5, "photo_cases": 8}
    (tmp_path / "match" / "metrics.json").write_text(json.dumps(measured))
    (tmp_path / "sum" / "metrics.json").write_text(json.dumps({"accuracy": 0.8}))  # not measured on photos: left out
    (tmp_path / ZERO_SHOT).write_text(json.dumps({"photos_roc_auc": 0.8, "gallery_roc_auc": 0.83, "gallery_recall_at_1": 0.5833}))
    table = photo_domain_table(tmp_path).splitlines()
    assert table[2] == "| match | 70.0% | 0.750 | 10.0% / 100 | 0.600 | 25.0% | 5 / 8 |"
    assert table[3] == "| zero-shot label bridge (nothing trained) | n/a | 0.800 | n/a | 0.830 | 58.3% | n/a |"
    assert len(table) == 4


def test_zero_shot_reference_scores_one_pair_like_the_gallery() -> None:
    """The app's reference beside a photo answer: one pair's cosine, read against the gallery's own/other captions."""
    from mmdemo.model.pretrained import FeatureCache
    from mmdemo.photos import gallery
    from mmdemo.processing import load_image, prepare_image
    from mmdemo.tasks.matching.photo_eval import ZeroShotReference

    ref = ZeroShotReference(BASE)
    own, other = ref.gallery()
    n = len(gallery())
    assert own.shape == (n,) and other.shape == (n * (n - 1),) and float(np.median(own)) > float(np.median(other))
    photo = gallery()[0]
    features = FeatureCache(max_items=0).get([prepare_image(load_image(photo.pixels), 224)])
    cos = ref.cosine(features, photo.caption)
    assert abs(cos - float(own[0])) < 1e-4 and ref.bridge.text.cache_size == 512
