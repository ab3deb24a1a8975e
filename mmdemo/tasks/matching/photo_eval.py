"""How the photo models, trained on clip art, carry over to photos; and the label bridge alone (zero-shot).

Two photo-domain measures, on photos no model is trained on:
- GCompris photos (`python -m mmdemo.experiments.data.gcompris`, ~250 Wikimedia Commons photos with their names):
  each photo with its own captions and as many mismatches, scored like the held-out split (evaluate_match:
  accuracy, ROC AUC, recall@1/@5 among 100).
- The gallery: the app's 12 sample photos against their 12 captions (what "search by sentence" ranks):
  ROC AUC over the 144 pairs and recall@1 (each caption's own photo first among the 12).
ZeroShotBridge is the reference with no trained part: the cosine between a sentence's mean MiniLM state and
the picture's class-name vector (EfficientNet-Lite0's ImageNet probabilities times the MiniLM vectors of the
class names; ConSE, Norouzi et al. 2014). It is what the label bridge knows before any training.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdemo.config import ModelConfig
from mmdemo.model.encoders import TextEncoder
from mmdemo.processing import pad_token_ids
from mmdemo.tasks.matching.pairs import expected_recall, roc_auc

# (scikit-image photo, sentence, expected answer), written before the first photo model was trained;
# tests/test_photos.py holds the shipped model to them.
PHOTO_CASES = (
    ("chelsea", "a cat", "match"),
    ("chelsea", "a red car", "mismatch"),
    ("coffee", "a cup of coffee", "match"),
    ("coffee", "a motorcycle", "mismatch"),
    ("rocket", "a rocket", "match"),
    ("rocket", "a cat", "mismatch"),
    ("astronaut", "a cup of coffee", "mismatch"),
    ("stereo_motorcycle", "a motorcycle", "match"),
)


class ZeroShotBridge(nn.Module):
    """Scores a (picture, sentence) pair by the cosine of their vectors in MiniLM space; nothing is trained.

    Has the two methods the evaluation calls on a FusionRNN (encode_features, answer), so the same pairs
    and metrics apply. Its logits are [cos, -cos]: ranking metrics (ROC AUC, recall) are meaningful, the
    0.5 threshold is not (it has no calibration), so its accuracy is not reported.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = replace(cfg, label_bridge=False, bridge_attention=False, fusion="attention")
        self.text = TextEncoder(self.cfg)

    @torch.no_grad()
    def encode_features(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 1280, 7, 7) frozen features -> (N, 384) unit class-name vectors of the whole picture."""
        from mmdemo.model.pretrained import label_embeddings, load_efficientnet

        fc = load_efficientnet()._fc
        probs = fc(features.float().mean((2, 3)).to(fc.weight.device)).softmax(-1)  # (N, 1000)
        return F.normalize(probs @ label_embeddings().to(probs.device), dim=-1).to(features.device)

    @torch.no_grad()
    def answer(self, memory: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, image_index: torch.Tensor | None = None, targets=None):
        words = self.text.frozen_features(token_ids, token_mask.bool())  # (B, T, 384)
        keep = token_mask.unsqueeze(-1).to(words.dtype)
        sentence = F.normalize((words * keep).sum(1) / keep.sum(1).clamp(min=1.0), dim=-1)  # (B, 384)
        pictures = memory[image_index] if image_index is not None else memory
        cos = (sentence * pictures.to(sentence.device)).sum(-1)
        return SimpleNamespace(logits=torch.stack([cos, -cos], dim=-1))


def _score_pairs(model: nn.Module, photos: list[np.ndarray], texts: list[str], pairs: list[tuple[int, int]]) -> np.ndarray:
    """P(match) of each (photo index, text index) pair; photos are full-size uint8 arrays."""
    from mmdemo.model.pretrained import FeatureCache
    from mmdemo.processing import load_image, prepare_image
    from mmdemo.text import tokenize

    model.eval()
    features = FeatureCache(max_items=0).get([prepare_image(load_image(p), 224) for p in photos])
    memory = model.encode_features(features)
    ids, _ = tokenize(texts, model.cfg.max_tokens)
    tokens, mask = pad_token_ids([ids[t] for _, t in pairs])
    logits = model.answer(memory, tokens, mask, torch.tensor([p for p, _ in pairs])).logits.float()
    return logits.softmax(-1)[:, 0].numpy()


@torch.inference_mode()
def gallery_metrics(model: nn.Module) -> dict[str, float]:
    """ROC AUC over the gallery's 12 x 12 (photo, caption) pairs and recall@1 of each caption's own photo."""
    from mmdemo.photos import gallery

    photos = gallery()
    n = len(photos)
    pairs = [(p, c) for c in range(n) for p in range(n)]  # caption c against every photo p
    p = _score_pairs(model, [ph.pixels for ph in photos], [ph.caption for ph in photos], pairs).reshape(n, n)  # (caption, photo)
    own = np.diag(p)
    better = (p > own[:, None]).sum(1)
    tied = (p == own[:, None]).sum(1) - 1
    recall1 = expected_recall(1, better, tied)
    return {"gallery_roc_auc": round(roc_auc(np.eye(n).ravel(), p.ravel()), 4), "gallery_recall_at_1": round(float(recall1.mean()), 4), "gallery_pairs": n * n}


@torch.inference_mode()
def photo_cases(model: nn.Module) -> dict[str, int]:
    """How many of PHOTO_CASES a matching model gets right (P(match) > 0.5 means match)."""
    from mmdemo.photos import gallery

    by_name = {ph.name: ph.pixels for ph in gallery()}
    names = sorted({c[0] for c in PHOTO_CASES})
    p = _score_pairs(model, [by_name[n] for n in names], [c[1] for c in PHOTO_CASES], [(names.index(c[0]), k) for k, c in enumerate(PHOTO_CASES)])
    right = sum((pk > 0.5) == (c[2] == "match") for pk, c in zip(p, PHOTO_CASES))
    return {"photo_cases_right": int(right), "photo_cases": len(PHOTO_CASES)}


class ZeroShotReference:
    """The zero-shot label bridge as a reference beside a trained photo model's answer (the app's Photos tab).

    cosine() scores one (picture, sentence) pair; gallery() gives what the same score is for the gallery's
    photos with their own captions and with the other captions, so one number can be read against them.
    """

    def __init__(self, cfg: ModelConfig, text_cache: int = 512) -> None:
        self.bridge = ZeroShotBridge(cfg).eval()
        self.bridge.text.cache_size = text_cache  # a server sees endless new sentences: keep the cache bounded
        self._gallery: tuple[np.ndarray, np.ndarray] | None = None

    @torch.inference_mode()
    def cosine(self, features: torch.Tensor, sentence: str) -> float:
        """features (1, 1280, 7, 7) of the picture (the photo model's own cache has them) -> cosine in [-1, 1]."""
        from mmdemo.text import tokenize

        ids, _ = tokenize([sentence], self.bridge.cfg.max_tokens)
        tokens, mask = pad_token_ids(ids)
        return float(self.bridge.answer(self.bridge.encode_features(features), tokens, mask).logits[0, 0])

    @torch.inference_mode()
    def gallery(self) -> tuple[np.ndarray, np.ndarray]:
        """(own, other): cosines of the gallery photos with their own captions (n,) and with the others (n * (n - 1),)."""
        if self._gallery is None:
            from mmdemo.model.pretrained import FeatureCache
            from mmdemo.photos import gallery
            from mmdemo.processing import load_image, prepare_image
            from mmdemo.text import tokenize

            photos = gallery()
            n = len(photos)
            pictures = self.bridge.encode_features(FeatureCache(max_items=0).get([prepare_image(load_image(p.pixels), 224) for p in photos]))
            ids, _ = tokenize([p.caption for p in photos], self.bridge.cfg.max_tokens)
            tokens, mask = pad_token_ids([ids[c] for c in range(n) for _ in range(n)])
            cos = self.bridge.answer(pictures, tokens, mask, torch.tensor([p for _ in range(n) for p in range(n)])).logits[:, 0]
            cos = cos.float().numpy().reshape(n, n)  # (caption, photo)
            self._gallery = (np.diag(cos).copy(), cos[~np.eye(n, dtype=bool)])
        return self._gallery
