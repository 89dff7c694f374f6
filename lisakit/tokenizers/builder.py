"""Build tokenizers from configs and add lisakit's special tokens.

A tokenizer config is either a dict for :data:`lisakit.registry.TOKENIZERS`
(``dict(type='WordTokenizer')``, ``dict(type='HFTokenizer', path=...)``) or a
local folder path (shorthand for ``HFTokenizer``). The backbone and the
tokenization transform build the tokenizer from the *same* config, so the ids
of ``<SEG>`` and ``<image>`` agree between model and data.
"""

from __future__ import annotations

import os
from typing import Optional, Union

from tokenizers import AddedToken
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from lisakit.registry import TOKENIZERS
from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN

TokenizerCfg = Union[str, dict, PreTrainedTokenizerBase]
#: LLaVA-v1's image delimiters: ``<im_start>`` + image features + ``<im_end>``.
IM_START_TOKEN = '<im_start>'
IM_END_TOKEN = '<im_end>'


@TOKENIZERS.register_module()
def HFTokenizer(path: str, **kwargs) -> PreTrainedTokenizerBase:  # noqa: N802 (registry name)
    """Load a Hugging Face tokenizer from a local folder (never from the hub).

    Args:
        path: Local folder holding ``tokenizer.json`` / ``tokenizer_config.json``.
        **kwargs: Passed to ``AutoTokenizer.from_pretrained``.

    Raises:
        FileNotFoundError: If ``path`` is not an existing folder.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f'Tokenizer folder {path!r} does not exist. lisakit never downloads: set the '
            'tokenizer config (e.g. model.backbone.processor.tokenizer) to a local folder '
            'holding tokenizer.json / tokenizer_config.json.'
        )
    kwargs.setdefault('padding_side', 'right')
    return AutoTokenizer.from_pretrained(path, local_files_only=True, **kwargs)


def add_lisa_tokens(
    tokenizer: PreTrainedTokenizerBase,
    seg_token: Optional[str] = SEG_TOKEN,
    image_token: str = IMAGE_TOKEN,
) -> PreTrainedTokenizerBase:
    """Add the ``<image>`` placeholder and the ``<SEG>`` token if missing.

    ``<SEG>`` is added as a normal (non-special) token, as LISA does, so it is
    kept when decoding with ``skip_special_tokens=True``.

    Args:
        tokenizer: The tokenizer to extend in place.
        seg_token: Text of the segmentation token; ``None`` adds none (a plain LLaVA
            tokenizer, converted before LISA's training adds it).
        image_token: Text of the image placeholder token.

    Returns:
        The same tokenizer.
    """
    vocab = tokenizer.get_vocab()
    if image_token not in vocab:
        tokenizer.add_special_tokens(
            {'additional_special_tokens': [AddedToken(image_token, normalized=False)]},
            replace_extra_special_tokens=False,
        )
    if seg_token is not None and seg_token not in vocab:
        tokenizer.add_tokens([AddedToken(seg_token, normalized=False, special=False)])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def add_im_start_end_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """Add ``<im_start>`` / ``<im_end>`` as special tokens when missing (a no-op for
    LISA's tokenizers, which hold them).

    Returns:
        Their ids ``(im_start, im_end)``.
    """
    vocab = tokenizer.get_vocab()
    new = [t for t in (IM_START_TOKEN, IM_END_TOKEN) if t not in vocab]
    if new:
        tokenizer.add_special_tokens(
            {'additional_special_tokens': [AddedToken(t, normalized=False) for t in new]},
            replace_extra_special_tokens=False,
        )
    return tuple(tokenizer.convert_tokens_to_ids([IM_START_TOKEN, IM_END_TOKEN]))


def build_tokenizer(
    cfg: TokenizerCfg, seg_token: str = SEG_TOKEN, image_token: str = IMAGE_TOKEN
) -> PreTrainedTokenizerBase:
    """Build a tokenizer from a config and make sure it knows lisakit's tokens.

    Args:
        cfg: A registry config dict, a local folder path, or a built tokenizer.
        seg_token: Text of the segmentation token.
        image_token: Text of the image placeholder token.

    Returns:
        The tokenizer, with ``seg_token`` and ``image_token`` in its vocabulary.
    """
    if isinstance(cfg, PreTrainedTokenizerBase):
        tokenizer = cfg
    elif isinstance(cfg, str):
        tokenizer = HFTokenizer(cfg)
    elif isinstance(cfg, dict):
        tokenizer = TOKENIZERS.build(dict(cfg))
    else:
        raise TypeError(
            f'tokenizer config must be a dict, a local path or a tokenizer, '
            f'got {type(cfg).__name__}.'
        )
    return add_lisa_tokens(tokenizer, seg_token, image_token)
