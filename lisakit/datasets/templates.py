"""LISA's question and answer templates (``utils/utils.py`` of the LISA repository).

``[SEG]`` is written as lisakit's ``<SEG>`` token and ``DEFAULT_IMAGE_TOKEN`` as
``<image>``. Datasets take these lists as config so users can swap them (per dataset,
with a seeded choice per sample); the helpers below validate and fill them.
"""

from typing import Optional, Sequence

import numpy as np

from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN

#: Short (class-name / phrase) questions; ``{class_name}`` is filled in.
SHORT_QUESTION_LIST = [
    IMAGE_TOKEN + '\n' + 'Can you segment the {class_name} in this image?',
    IMAGE_TOKEN + '\n' + 'Please segment the {class_name} in this image.',
    IMAGE_TOKEN
    + '\n'
    + 'What is {class_name} in this image? Please respond with segmentation mask.',
    IMAGE_TOKEN + '\n' + 'What is {class_name} in this image? Please output segmentation mask.',
]
#: Long (sentence) questions; ``{sent}`` is filled in.
LONG_QUESTION_LIST = [
    IMAGE_TOKEN + '\n' + '{sent} Please respond with segmentation mask.',
    IMAGE_TOKEN + '\n' + '{sent} Please output segmentation mask.',
]
#: Appended to a question when an explanation is asked for.
EXPLANATORY_QUESTION_LIST = [
    'Please output segmentation mask and explain why.',
    'Please output segmentation mask and explain the reason.',
    'Please output segmentation mask and give some explanation.',
]
#: Training answers; one ``<SEG>`` each.
ANSWER_LIST = [
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation result is {SEG_TOKEN}.',
    f'{SEG_TOKEN}.',
]
#: LISA's fixed validation answer (teacher-forced evaluation).
VAL_ANSWER = f'{SEG_TOKEN}.'

#: Placeholder of a multi-target answer, filled with one ``<SEG>`` per target.
SEGS_PLACEHOLDER = '{segs}'
#: Answers naming several targets (per-object mode): ``{segs}`` becomes
#: ``"<SEG>, <SEG> and <SEG>"`` (:func:`fill_segs`).
MULTI_ANSWER_LIST = [
    'Sure, they are {segs}.',
    'Sure, {segs}.',
    'They are {segs}.',
    'Sure, the segmentation result is {segs}.',
    '{segs}.',
]
#: Text answers to a query naming no object in the image (GSVA's rejection as text: no
#: ``<SEG>``, so the model predicts no mask).
REJECT_ANSWER_LIST = [
    'Sorry, there is no such object in the image.',
    'Sorry, I cannot find it in the image.',
    'There is no such object in the image.',
]
#: Separators of :func:`fill_segs`: ``"<SEG>, <SEG> and <SEG>"``.
SEG_SEPARATOR = ', '
LAST_SEG_SEPARATOR = ' and '

#: Placeholders the question templates fill in.
SHORT_PLACEHOLDER = '{class_name}'
LONG_PLACEHOLDER = '{sent}'


def check_templates(
    owner: str,
    answers: Sequence[str] = (),
    short_questions: Sequence[str] = (),
    long_questions: Sequence[str] = (),
    explanatory_questions: Sequence[str] = (),
    multi_answers: Sequence[str] = (),
    reject_answers: Sequence[str] = (),
) -> None:
    """Validate template lists given as config.

    Answers need exactly one ``<SEG>``; short / long questions exactly one ``<image>``
    and their placeholder (``{class_name}`` / ``{sent}``); explanatory questions
    (appended to a query) neither; multi-target answers exactly one ``{segs}`` and no
    ``<SEG>``; rejection answers no ``<SEG>`` and no ``<image>``.

    Args:
        owner: The dataset or config key, named in errors.
        answers: Answer templates.
        short_questions: Templates with ``{class_name}``.
        long_questions: Templates with ``{sent}``.
        explanatory_questions: Suffixes asking for an explanation.
        multi_answers: Templates with ``{segs}`` (:func:`fill_segs`).
        reject_answers: Text answers for a query naming no object.

    Raises:
        TypeError: If a list is given as one string.
        ValueError: Naming the list and the bad template.
    """
    lists = dict(
        answers=answers,
        short_questions=short_questions,
        long_questions=long_questions,
        explanatory_questions=explanatory_questions,
        multi_answers=multi_answers,
        reject_answers=reject_answers,
    )
    for key, items in lists.items():
        if isinstance(items, str):
            raise TypeError(f'{owner}: {key} must be a list of strings, got one string.')
    problems = []
    for a in answers:
        if a.count(SEG_TOKEN) != 1:
            problems.append(f'answers: {a!r} needs exactly one {SEG_TOKEN}')
    for key, items, placeholder in (
        ('short_questions', short_questions, SHORT_PLACEHOLDER),
        ('long_questions', long_questions, LONG_PLACEHOLDER),
    ):
        for q in items:
            if q.count(IMAGE_TOKEN) != 1 or placeholder not in q:
                problems.append(f'{key}: {q!r} needs exactly one {IMAGE_TOKEN} and {placeholder}')
    for q in explanatory_questions:
        if IMAGE_TOKEN in q or SEG_TOKEN in q:
            problems.append(f'explanatory_questions: {q!r} must not contain special tokens')
    for a in multi_answers:
        if a.count(SEGS_PLACEHOLDER) != 1 or SEG_TOKEN in a:
            problems.append(
                f'multi_answers: {a!r} needs exactly one {SEGS_PLACEHOLDER} and no {SEG_TOKEN}'
            )
    for a in reject_answers:
        if SEG_TOKEN in a or IMAGE_TOKEN in a:
            problems.append(f'reject_answers: {a!r} must not contain {SEG_TOKEN} or {IMAGE_TOKEN}')
    if problems:
        raise ValueError(f'{owner}: bad templates: ' + '; '.join(problems) + '.')


def fill_question(
    rng: np.random.Generator,
    text: str,
    is_sentence: bool,
    short_questions: Sequence[str],
    long_questions: Sequence[str],
) -> str:
    """A seeded question: a long template with ``{sent}`` for sentences, else a short
    one with ``{class_name}`` = ``text`` lowercased (as LISA does)."""
    if is_sentence:
        return str(rng.choice(list(long_questions))).format(sent=text)
    return str(rng.choice(list(short_questions))).format(class_name=text.lower())


def fill_segs(
    template: str,
    num: int,
    sep: str = SEG_SEPARATOR,
    last_sep: str = LAST_SEG_SEPARATOR,
) -> str:
    """A multi-target answer with ``num`` ``<SEG>``: ``{segs}`` replaced by
    ``"<SEG>, <SEG> and <SEG>"`` (``num`` = 3; ``"<SEG>"`` for 1).

    Args:
        template: A template holding ``{segs}`` (see :data:`MULTI_ANSWER_LIST`).
        num: Number of targets, >= 1.
        sep: Separator between all but the last two ``<SEG>``.
        last_sep: Separator before the last ``<SEG>``.

    Raises:
        ValueError: If ``num < 1`` or the template has no ``{segs}``.
    """
    if num < 1 or SEGS_PLACEHOLDER not in template:
        raise ValueError(
            f'fill_segs: need num >= 1 and a template with {SEGS_PLACEHOLDER}; got '
            f'num={num}, template={template!r}.'
        )
    segs = [SEG_TOKEN] * num
    joined = segs[0] if num == 1 else sep.join(segs[:-1]) + last_sep + segs[-1]
    return template.replace(SEGS_PLACEHOLDER, joined)


def strip_image_token(text: str) -> str:
    """``text`` without ``<image>`` (and the newline LISA puts after it)."""
    return text.replace(IMAGE_TOKEN + '\n', '').replace(IMAGE_TOKEN, '').strip()


def to_turns(questions: Sequence[str], answers: Sequence[str]) -> list[dict]:
    """Question / answer pairs as conversation turns with ``<image>`` in the first
    question only: kept where the first question has it, else put in front as
    ``"<image>\\n"`` (LISA's placement for LLaVA-Instruct data); removed from later ones."""
    turns = []
    for k, (q, a) in enumerate(zip(questions, answers)):
        if k == 0 and IMAGE_TOKEN not in q:
            q = IMAGE_TOKEN + '\n' + q.strip()
        elif k > 0:
            q = strip_image_token(q)
        turns.append(dict(question=q, answer=a))
    return turns


def chunk(items: Sequence, size: Optional[int]) -> list[list]:
    """Consecutive groups of at most ``size`` items (all in one group if ``size`` is None)."""
    if size is None or size >= len(items):
        return [list(items)]
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
