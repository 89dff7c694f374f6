"""Encode text as transformers 4.31's slow ``LlamaTokenizer`` does (LISA's tokenizer).

LISA loads its tokenizer with ``use_fast=False`` under transformers 4.31 (``legacy``
behaviour). Encoding a string then works in three steps:

1. Split the text at every *no-split* token (added tokens such as ``[SEG]``,
   ``<im_start>``, ``<im_end>``, and the special tokens ``<s>``, ``</s>``, ``<unk>``),
   longest match first.
2. Strip the whitespace (spaces *and* newlines) on both sides of every no-split token
   that is not one of LLaMA's own special tokens (those are ``AddedToken`` objects
   with ``lstrip=rstrip=False``): ``"ASSISTANT: [SEG] ."`` gives ``ASSISTANT:``,
   ``[SEG]``, ``.``; ``"<im_end>\\nWhat"`` gives ``<im_end>``, ``What``.
3. Encode every remaining non-empty piece on its own with sentencepiece, which puts its
   dummy prefix ``▁`` in front of each piece (``"."`` becomes ``▁.``, ``" x"`` becomes
   ``▁ ▁x``).

transformers 5 keeps the whitespace next to added tokens and adds the ``▁`` prefix only
when a piece does not already start with a space, so its ids differ (see
docs/datasets.md, "Tokenization"). :class:`SlowLlamaEncoder` reproduces the 4.31 ids
from a transformers-5 tokenizer: with the folder's ``tokenizer.model`` read by
sentencepiece when there is one (4.31's own code path), else with the tokenizer's
BPE on the piece (a leading space is doubled to get the dummy prefix).
"""

from __future__ import annotations

import os
import re
from typing import Optional

from transformers import PreTrainedTokenizerBase


def _sentencepiece_model(tokenizer: PreTrainedTokenizerBase):
    """The tokenizer's sentencepiece model, or None (no ``tokenizer.model`` / package)."""
    path = getattr(tokenizer, 'vocab_file', None) or tokenizer.init_kwargs.get('vocab_file')
    if not (isinstance(path, str) and path.endswith('.model') and os.path.isfile(path)):
        return None
    try:
        import sentencepiece as spm
    except ImportError:  # the BPE path below is used instead
        return None
    return spm.SentencePieceProcessor(model_file=path)


class SlowLlamaEncoder:
    """Text to ids with transformers 4.31 slow-``LlamaTokenizer`` semantics.

    Args:
        tokenizer: The (transformers 5) tokenizer whose vocabulary and added tokens are
            used; tokens added to it later are seen too.
        use_sentencepiece: Encode pieces with the folder's ``tokenizer.model`` when there
            is one (``None``: when available; ``False``: always the tokenizer's BPE).
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, use_sentencepiece: Optional[bool] = None
    ) -> None:
        self.tokenizer = tokenizer
        self.sp = None if use_sentencepiece is False else _sentencepiece_model(tokenizer)
        if use_sentencepiece and self.sp is None:
            raise ValueError(
                'use_sentencepiece=True needs a tokenizer loaded from a folder with '
                'tokenizer.model and the sentencepiece package (pip install sentencepiece).'
            )
        self._cache_key = None
        self._pattern = None

    def _no_split(self) -> tuple[re.Pattern, set[str], dict[str, int]]:
        """Split pattern, tokens that keep adjacent whitespace, and the added-token ids."""
        tok = self.tokenizer
        added = dict(tok.get_added_vocab())
        for name in ('bos_token', 'eos_token', 'unk_token'):
            text = getattr(tok, name, None)
            if text is not None:
                added.setdefault(str(text), tok.convert_tokens_to_ids(str(text)))
        key = tuple(sorted(added.items()))
        if key != self._cache_key:  # tokens were added since the last call
            alternatives = sorted(added, key=len, reverse=True)  # longest match first
            self._pattern = re.compile('(' + '|'.join(map(re.escape, alternatives)) + ')')
            self._cache_key = key
        # LLaMA's <s>, </s>, <unk> (and the pad token, = <unk> in LISA) keep whitespace
        keep = {str(getattr(tok, n)) for n in ('bos_token', 'eos_token', 'unk_token', 'pad_token')}
        return self._pattern, keep, added

    def _encode_piece(self, text: str) -> list[int]:
        """One piece without added tokens, with sentencepiece's dummy prefix."""
        if self.sp is not None:
            return list(self.sp.encode(text))
        # transformers 5 prepends the ▁ only when the text does not start with a space
        text = ' ' + text if text.startswith(' ') else text
        return list(self.tokenizer(text, add_special_tokens=False)['input_ids'])

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        """Ids of ``text`` as 4.31's ``tokenizer(text).input_ids`` (BOS first when ``add_bos``)."""
        pattern, keep, added = self._no_split()
        parts = pattern.split(text) if added else [text]
        is_token = [k % 2 == 1 for k in range(len(parts))]  # re.split: odd = separators
        for i, part in enumerate(parts):
            if is_token[i] and part not in keep:
                if i + 1 < len(parts) and parts[i + 1]:
                    parts[i + 1] = parts[i + 1].lstrip()
                if i > 0 and parts[i - 1]:
                    parts[i - 1] = parts[i - 1].rstrip()
        bos = self.tokenizer.bos_token_id
        ids = [bos] if add_bos and bos is not None else []
        for part, token in zip(parts, is_token):
            if token:
                ids.append(added[part])
            elif part:
                ids += self._encode_piece(part)
        return ids


def is_sentencepiece_llama(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` is a LLaMA sentencepiece tokenizer (LISA's kind)."""
    from transformers import LlamaTokenizer

    return isinstance(tokenizer, LlamaTokenizer) or _sentencepiece_model(tokenizer) is not None
