"""Short (class-name / phrase) conversations for refCOCO and semantic segmentation.

Training: one turn per target, each exactly LISA's: a ``SHORT_QUESTION_LIST`` question
with ``{class_name}`` = the lowercased name and an ``ANSWER_LIST`` answer (one
``<SEG>``). LISA makes ``num_classes_per_sample`` separate one-turn conversations per
image; lisakit makes them the turns of one conversation (``<image>`` in the first
question only), so ``gt_masks`` follow the turns. Evaluation: LISA's fixed prompt and
answer for one target.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .reasonseg import VAL_SHORT_PROMPT
from .templates import VAL_ANSWER, check_templates, to_turns


def init_short_queries(
    dataset: object,
    num_classes_per_sample: int,
    answers: Sequence[str],
    short_questions: Sequence[str],
) -> None:
    """Check and set ``num_classes_per_sample``, ``answers`` and ``short_questions`` on a
    class-name dataset (refCOCO, semantic and part segmentation).

    Raises:
        ValueError: If ``num_classes_per_sample < 1`` or a template is malformed.
    """
    if num_classes_per_sample < 1:
        raise ValueError(f'num_classes_per_sample={num_classes_per_sample}; expected >= 1.')
    name = type(dataset).__name__
    check_templates(name, answers=answers, short_questions=short_questions)
    dataset.num_classes_per_sample = num_classes_per_sample
    dataset.answers, dataset.short_questions = list(answers), list(short_questions)


def short_turns(
    names: Sequence[str],
    rng: np.random.Generator,
    questions: Sequence[str],
    answers: Sequence[str],
) -> dict:
    """``conversations`` (one turn per name) and the first turn's ``question`` and
    ``answer``, with seeded template choices.

    Args:
        names: One class name or referring phrase per target mask.
        rng: The sample's generator.
        questions: Templates with ``{class_name}`` and one ``<image>``.
        answers: Templates with one ``<SEG>``.
    """
    texts, replies = [], []
    for name in names:  # question, then answer, per target (LISA's draw order)
        question = questions[int(rng.integers(len(questions)))]
        texts.append(question.format(class_name=name.lower()))
        replies.append(answers[int(rng.integers(len(answers)))])
    turns = to_turns(texts, replies)
    return dict(conversations=turns, question=turns[0]['question'], answer=turns[0]['answer'])


def val_query(name: str) -> dict:
    """LISA's evaluation ``question`` (``"<image>\\n What is {name} in this image?
    Please output segmentation mask."``, name stripped and lowercased) and ``answer``
    (``"<SEG>."``)."""
    return dict(question=VAL_SHORT_PROMPT.format(text=name.strip().lower()), answer=VAL_ANSWER)
