"""Tokenizer builders (registered in ``lisakit.registry.TOKENIZERS``)."""

from .builder import (
    IM_END_TOKEN,
    IM_START_TOKEN,
    HFTokenizer,
    add_im_start_end_tokens,
    add_lisa_tokens,
    build_tokenizer,
)
from .conversation import (
    CONVERSATION_TEMPLATES,
    TEXT_ENCODINGS,
    ConversationEncoder,
    ConversationTemplate,
    get_template,
)
from .slow_llama import SlowLlamaEncoder, is_sentencepiece_llama
from .word_tokenizer import WordTokenizer

__all__ = [
    'CONVERSATION_TEMPLATES',
    'TEXT_ENCODINGS',
    'ConversationEncoder',
    'ConversationTemplate',
    'SlowLlamaEncoder',
    'get_template',
    'is_sentencepiece_llama',
    'IM_END_TOKEN',
    'IM_START_TOKEN',
    'HFTokenizer',
    'WordTokenizer',
    'add_im_start_end_tokens',
    'add_lisa_tokens',
    'build_tokenizer',
]
