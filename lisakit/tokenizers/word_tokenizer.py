"""An offline word-level tokenizer for tiny configs and tests.

Real configs load a local Hugging Face tokenizer folder; the tiny configs need a
tokenizer that exists without any download. This one is a ``tokenizers``
WordLevel model (lowercasing, whitespace + punctuation splitting) over a fixed,
sorted vocabulary, wrapped as a ``transformers`` fast tokenizer, so ids are
identical in every process.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lisakit.registry import TOKENIZERS

UNK, BOS, EOS, PAD = '<unk>', '<s>', '</s>', '<pad>'
_SPECIALS = (UNK, BOS, EOS, PAD)
_WORD_RE = re.compile(r'\w+|[^\w\s]')


#: The default vocabulary: every word / punctuation mark of LISA's question and answer
#: templates, the conversation templates and the shapes dataset's queries, sorted. Frozen
#: here so that tokenizers (a lower layer) need not import the datasets; a test
#: (tests/tokenizers/test_default_vocab.py) checks it against those texts.
DEFAULT_WORDS = tuple(
    """
    ' , . : < > ? a an and answers artificial assistant between blue bottom can chat circle
    class_name closest corners curious detailed edge explain explanation fewest give gives
    green has helpful hexagon human image in intelligence is it largest left mask most
    nearest of one output pentagon please polite purple questions reason red respond result
    right s seg segment segmentation sent shape smallest some square sure the this to top
    triangle user what which why with yellow you { }
    """.split()
)


def default_corpus() -> list[str]:
    """Texts whose words form the default vocabulary (:data:`DEFAULT_WORDS`)."""
    return list(DEFAULT_WORDS)


def corpus_vocab(texts: Iterable[str], specials: Sequence[str] = _SPECIALS) -> dict[str, int]:
    """Map every lowercased word / punctuation mark of ``texts`` to an id.

    Special tokens come first (``<unk>`` = 0), then the words in sorted order.
    """
    words = sorted({w for t in texts for w in _WORD_RE.findall(t.lower())} - set(specials))
    return {tok: i for i, tok in enumerate(list(specials) + words)}


@TOKENIZERS.register_module()
def WordTokenizer(  # noqa: N802 (a registry name, used like a class)
    corpus: Optional[Sequence[str]] = None,
    extra_words: Sequence[str] = (),
    model_max_length: int = 512,
    numbered_words: int = 0,
) -> PreTrainedTokenizerFast:
    """Build the offline word-level tokenizer.

    Args:
        corpus: Texts whose words make the vocabulary. Defaults to LISA's templates,
            the conversation templates and the shapes dataset's vocabulary.
        extra_words: More texts to add to the vocabulary.
        model_max_length: Maximum sequence length recorded on the tokenizer.
        numbered_words: Also add the words ``w0`` .. ``w{n-1}`` (one token each): a
            vocabulary of a real model's size for random-weight runs, without listing it.

    Returns:
        A ``transformers`` fast tokenizer (right padding, ``<pad>`` as pad token).
    """
    texts = list(default_corpus() if corpus is None else corpus) + list(extra_words)
    texts += [f'w{i}' for i in range(numbered_words)]
    tok = Tokenizer(models.WordLevel(vocab=corpus_vocab(texts), unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix='##')  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side='right',
        model_max_length=model_max_length,
    )
