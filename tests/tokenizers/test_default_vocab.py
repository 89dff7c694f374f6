"""The WordTokenizer's frozen default vocabulary equals the words of the texts it covers."""

from lisakit.datasets import shapes_reasonseg, templates
from lisakit.tokenizers import WordTokenizer, conversation
from lisakit.tokenizers.word_tokenizer import DEFAULT_WORDS, corpus_vocab


def _texts() -> list[str]:
    texts = (
        templates.SHORT_QUESTION_LIST
        + templates.LONG_QUESTION_LIST
        + templates.EXPLANATORY_QUESTION_LIST
        + templates.ANSWER_LIST
    )
    for template in conversation.CONVERSATION_TEMPLATES.values():
        texts += [template.head(), template.tail()]
    return texts + shapes_reasonseg.corpus()


def test_default_words_cover_the_templates_and_the_shapes_queries():
    """If a template or the shapes data gains a word, add it to DEFAULT_WORDS."""
    assert corpus_vocab(DEFAULT_WORDS) == corpus_vocab(_texts())


def test_default_tokenizer_ids_are_those_of_the_texts():
    tokenizer = WordTokenizer()
    for word, index in corpus_vocab(_texts()).items():
        assert tokenizer.convert_tokens_to_ids(word) == index, word
