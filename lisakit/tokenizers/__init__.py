"""Tokenizer builders (registered in ``lisakit.registry.TOKENIZERS``)."""

from .builder import HFTokenizer, add_lisa_tokens, build_tokenizer
from .word_tokenizer import WordTokenizer

__all__ = ['HFTokenizer', 'WordTokenizer', 'add_lisa_tokens', 'build_tokenizer']
