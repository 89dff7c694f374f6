"""Tokenizer builders (registered in ``lisakit.registry.TOKENIZERS``)."""

from .builder import (
    IM_END_TOKEN,
    IM_START_TOKEN,
    HFTokenizer,
    add_im_start_end_tokens,
    add_lisa_tokens,
    build_tokenizer,
)
from .word_tokenizer import WordTokenizer

__all__ = [
    'IM_END_TOKEN',
    'IM_START_TOKEN',
    'HFTokenizer',
    'WordTokenizer',
    'add_im_start_end_tokens',
    'add_lisa_tokens',
    'build_tokenizer',
]
