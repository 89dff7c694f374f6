"""Users' own data as JSON lines (one image and its conversation per line).

Each non-blank line of ``ann_file`` is a JSON object::

    {"image": "images/0001.jpg",
     "conversations": [
        {"question": "Where is the cat?", "answer": "It is <SEG>.",
         "masks": [{"polygons": [[10, 12, 60, 12, 60, 50, 10, 50]]}]},
        {"query": "the dog on the left", "masks": [{"png": "masks/0001_dog.png"}]},
        {"question": "What are they doing?", "answer": "Sleeping on a sofa."}]}

A turn is either explicit (``question`` + ``answer`` with one ``<SEG>`` per entry of
``masks``) or a ``query`` (a phrase, or a sentence with ``"is_sentence": true``) turned
into a question and answer with the dataset's templates. A ``query`` with one mask gets
an ``answers`` template; with several masks (one per object, in the order given) a
``multi_answers`` one ("Sure, they are <SEG>, <SEG> and <SEG>."); with
``"no_target": true`` and no mask a ``reject_answers`` text (no ``<SEG>``), or in
``test_mode`` the first ``answers`` template with an all-zero mask, so a metric sees
what is predicted. (For LISA's merged mode give one mask whose polygons cover all the
targets.) Masks
are polygons, COCO RLE or PNG paths (:mod:`lisakit.datasets.transforms.masks`). See
``docs/datasets.md`` for the full format.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from lisakit.registry import DATASETS
from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN

from .bad_samples import DATA_ERRORS, SkipBadSamplesMixin
from .templates import (
    ANSWER_LIST,
    LONG_QUESTION_LIST,
    MULTI_ANSWER_LIST,
    REJECT_ANSWER_LIST,
    SHORT_QUESTION_LIST,
    check_templates,
    chunk,
    fill_question,
    fill_segs,
    to_turns,
)
from .transforms.masks import EMPTY_MASK_ANN, parse_mask_ann

UTF8_BOM = '\ufeff'


def read_jsonl(path: str):
    """Yield ``(line number, object or exception)`` for each non-blank line of ``path``.

    Lines that are not UTF-8 or not valid JSON yield a ValueError naming the line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Annotation file {path!r} not found; check data_root / ann_file.')
    with open(path, 'rb') as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode('utf-8')
            except UnicodeDecodeError as err:
                yield line_no, ValueError(f'not UTF-8 text ({err}); re-save the file as UTF-8')
                continue
            text = text.lstrip(UTF8_BOM) if line_no == 1 else text
            if not text.strip():
                continue
            try:
                yield line_no, json.loads(text.rstrip())
            except json.JSONDecodeError as err:
                yield line_no, ValueError(f'invalid JSON ({err.msg} at column {err.colno})')


class AnnLocationMixin:
    """Prefix errors raised while reading a sample (missing image, bad mask, ...) with the
    sample's ``ann_location`` (``file:line``), unless the message already names it. List
    it after ``SkipBadSamplesMixin``, before ``BaseDataset``."""

    def prepare_data(self, idx: int) -> Any:
        """``BaseDataset.prepare_data`` with located errors."""
        try:
            return super().prepare_data(idx)
        except DATA_ERRORS as err:
            where = self.get_data_info(idx).get('ann_location')
            if not where or where in str(err):
                raise
            raise type(err)(f'{where}: {err}') from err


@DATASETS.register_module()
class JSONLDataset(SkipBadSamplesMixin, AnnLocationMixin, BaseDataset):
    """Images with conversations and masks from a JSON-lines file.

    Args:
        ann_file: The ``.jsonl`` file (relative to ``data_root``).
        data_root: Root of relative paths.
        data_prefix: ``img_path`` (folder of images) and ``mask_path`` (folder of mask
            PNGs), both relative to ``data_root``.
        num_classes_per_sample: At most this many turns per sample (LISA: 3); a longer
            conversation is split into consecutive chunks, each a sample with the
            ``<image>`` in its first question. None keeps every line whole.
        answers / short_questions / long_questions: Templates for ``query`` turns.
        multi_answers: Templates with ``{segs}`` for ``query`` turns with 2+ masks.
        reject_answers: Answers of ``"no_target": true`` query turns (no ``<SEG>``).
        seed: Seed of the per-line template choice.
        on_error: ``'raise'``: stop at the first bad line with ``file:line`` and the
            reason; ``'skip'``: leave it out, list it in ``skipped`` and log a warning
            (and, in training, skip samples failing in the pipeline, logged).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    METAINFO = dict(classes=('object',))

    def __init__(
        self,
        ann_file: str,
        data_root: str = '',
        data_prefix: Optional[dict] = None,
        num_classes_per_sample: Optional[int] = None,
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        long_questions: Sequence[str] = tuple(LONG_QUESTION_LIST),
        multi_answers: Sequence[str] = tuple(MULTI_ANSWER_LIST),
        reject_answers: Sequence[str] = tuple(REJECT_ANSWER_LIST),
        seed: int = 0,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        self._init_on_error(on_error)
        check_templates(
            type(self).__name__,
            answers,
            short_questions,
            long_questions,
            multi_answers=multi_answers,
            reject_answers=reject_answers,
        )
        self.multi_answers, self.reject_answers = list(multi_answers), list(reject_answers)
        if num_classes_per_sample is not None and num_classes_per_sample < 1:
            raise ValueError(f'num_classes_per_sample={num_classes_per_sample}; expected >= 1.')
        self.num_classes_per_sample, self.seed = num_classes_per_sample, seed
        self.answers, self.short_questions = list(answers), list(short_questions)
        self.long_questions = list(long_questions)
        prefix = {**dict(img_path='', mask_path=''), **(data_prefix or {})}
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=prefix, **kwargs)

    def _resolve(self, key: str, path: str) -> str:
        return os.path.join(self.data_prefix[key], path)

    def _turn(self, turn, t: int, rng: np.random.Generator) -> tuple[str, str, list[dict], bool]:
        """(question, answer, parsed masks, no_target) of turn ``t`` (1-based)."""
        if not isinstance(turn, dict):
            raise ValueError(f'turn {t} must be an object')
        masks = turn.get('masks', [])
        if not isinstance(masks, list):
            raise ValueError(f'turn {t}: "masks" must be a list')
        no_target = bool(turn.get('no_target', False))
        if no_target and masks:
            raise ValueError(f'turn {t}: a "no_target" turn has no masks')
        if 'query' in turn:
            if not isinstance(turn['query'], str) or not (masks or no_target):
                raise ValueError(
                    f'turn {t}: a "query" turn needs a string and at least 1 mask, or '
                    '"no_target": true'
                )
            is_sentence = bool(turn.get('is_sentence', False))
            question = fill_question(
                rng, turn['query'], is_sentence, self.short_questions, self.long_questions
            )
            answer, masks = self._query_answer(rng, masks, no_target)
        else:
            question, answer = turn.get('question'), turn.get('answer')
            if not (isinstance(question, str) and isinstance(answer, str)):
                raise ValueError(f'turn {t} needs "question" and "answer" strings, or "query"')
            if question.count(IMAGE_TOKEN) > (1 if t == 1 else 0):
                raise ValueError(f'turn {t}: only the first question may hold one {IMAGE_TOKEN}')
            if answer.count(SEG_TOKEN) != len(masks):
                raise ValueError(
                    f'turn {t}: the answer has {answer.count(SEG_TOKEN)} {SEG_TOKEN} but '
                    f'there are {len(masks)} masks; give one mask per {SEG_TOKEN}, in order'
                )
        parsed = []
        for k, mask in enumerate(masks, start=1):
            if mask is EMPTY_MASK_ANN:
                parsed.append(dict(EMPTY_MASK_ANN))
                continue
            try:
                parsed.append(parse_mask_ann(mask, k, lambda p: self._resolve('mask_path', p)))
            except ValueError as err:
                raise ValueError(f'turn {t}: {err}') from err
        return question, answer, parsed, no_target

    def _query_answer(self, rng: np.random.Generator, masks: list, no_target: bool):
        """``(answer, masks)`` of a query turn (see the module docstring)."""
        if no_target and not self.test_mode:
            return str(rng.choice(self.reject_answers)), []
        if no_target:
            return self.answers[0], [EMPTY_MASK_ANN]
        if len(masks) == 1:
            return str(rng.choice(self.answers)), masks
        return fill_segs(str(rng.choice(self.multi_answers)), len(masks)), masks

    def _parse(self, obj, line_no: int, where: str) -> list[dict]:
        """Dataset entries of one line (several when the conversation is chunked)."""
        missing = [
            k for k in ('image', 'conversations') if not isinstance(obj, dict) or k not in obj
        ]
        if missing:
            raise ValueError(f'missing keys {missing}; each line needs "image" and "conversations"')
        if not isinstance(obj['image'], str) or not isinstance(obj['conversations'], list):
            raise ValueError('"image" must be a path and "conversations" a list of turns')
        if not obj['conversations']:
            raise ValueError('"conversations" is empty')
        rng = np.random.default_rng([self.seed, line_no])
        turns = [self._turn(turn, t, rng) for t, turn in enumerate(obj['conversations'], 1)]
        entries = []
        for part in chunk(turns, self.num_classes_per_sample):
            conversations = to_turns([p[0] for p in part], [p[1] for p in part])
            entries.append(
                dict(
                    img_path=self._resolve('img_path', obj['image']),
                    ann_location=where,
                    conversations=conversations,
                    question=conversations[0]['question'],
                    answer=conversations[0]['answer'],
                    mask_anns=[m for p in part for m in p[2]],
                    no_target=all(p[3] for p in part),
                    num_targets=sum(0 if p[3] else len(p[2]) for p in part),
                )
            )
        return entries

    def load_data_list(self) -> list[dict]:
        """Parse every line; bad lines raise or are skipped (``on_error``)."""
        data_list = []
        for line_no, obj in read_jsonl(self.ann_file):
            where = f'{self.ann_file}:{line_no}'
            try:
                if isinstance(obj, Exception):
                    raise obj
                entries = self._parse(obj, line_no, where)
            except ValueError as err:
                self._bad(ValueError(f'{where}: {err}.'), where)
                continue
            for entry in entries:
                data_list.append(dict(entry, sample_idx=len(data_list)))
        self._log_skipped(f'line(s) of {self.ann_file}')
        return data_list
