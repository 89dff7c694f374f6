"""ReasonSeg (LISA's folder format) and its mask rasterization.

Layout: ``{data_root}/{split}/{name}.jpg`` with ``{name}.json`` holding ``text`` (a list of
queries), ``is_sentence`` (long sentence vs short phrase) and labelme-style ``shapes``
(``label``, ``points``). Masks follow LISA's ``get_mask_from_json`` exactly.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dataset import BaseDataset

from lisakit.registry import DATASETS, TRANSFORMS
from lisakit.utils.constants import IGNORE_INDEX, IMAGE_TOKEN

from .bad_samples import DATA_ERRORS, SkipBadSamplesMixin
from .draws import sample_rng
from .templates import (
    ANSWER_LIST,
    EXPLANATORY_QUESTION_LIST,
    LONG_QUESTION_LIST,
    SHORT_QUESTION_LIST,
    VAL_ANSWER,
    check_templates,
    fill_question,
    to_turns,
)

QUERY_TYPES = ('all', 'short', 'long')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
#: LISA's validation prompts (note the space after the newline, as in LISA).
VAL_LONG_PROMPT = '<image>\n {text} Please output segmentation mask.'
VAL_SHORT_PROMPT = '<image>\n What is {text} in this image? Please output segmentation mask.'
POLYLINE_THICKNESS = 1
#: A shape's ``points`` are (K, 2) [x, y] pairs.
POINTS_NDIM = 2
POINT_COORDS = 2
#: LISA's explanatory answers: (question, answer) kinds of a training sample.
ANSWER_TYPES = ('seg', 'seg+explanation', 'explanation')
EXPLANATORY_KEYS = ('image', 'outputs')


def read_reasonseg_json(json_path: str) -> dict:
    """Read a ReasonSeg annotation (UTF-8, falling back to cp1252 as LISA does)."""
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f'Annotation {json_path!r} not found.')
    for encoding in ('utf-8', 'cp1252'):
        try:
            with open(json_path, encoding=encoding) as f:
                data = json.load(f)
            break
        except UnicodeDecodeError:
            continue
        except json.JSONDecodeError as err:
            raise ValueError(f'{json_path}: invalid JSON ({err}); fix or remove the file.') from err
    else:
        raise ValueError(f'{json_path}: neither UTF-8 nor cp1252 text.')
    missing = [k for k in ('text', 'shapes') if k not in data]
    if missing:
        raise ValueError(
            f'{json_path}: missing keys {missing}; a ReasonSeg annotation needs '
            '"text", "is_sentence" and "shapes".'
        )
    return data


def _shape_points(shape: dict, k: int, json_path: str) -> np.ndarray:
    """(K, 2) int32 points of shape ``k`` (truncated, as LISA), checked so that a bad shape
    raises a ``ValueError`` naming the file instead of a bare cv2 assertion."""
    label = shape.get('label') if isinstance(shape, dict) else None
    try:
        points = np.asarray(shape.get('points'), dtype=np.float64)  # (K, 2) x, y
    except (AttributeError, TypeError, ValueError):
        points = None
    if (
        points is None
        or points.ndim != POINTS_NDIM
        or points.shape[0] < 1
        or points.shape[1] != POINT_COORDS
        or not np.isfinite(points).all()
    ):
        raise ValueError(
            f'{json_path}: shape {k} (label {label!r}): "points" must be a non-empty list of '
            'finite [x, y] pairs; fix or remove the shape.'
        )
    return points.astype(np.int32)


def _fill(canvas: np.ndarray, points: np.ndarray, value: int) -> None:
    cv2.polylines(canvas, [points], True, value, POLYLINE_THICKNESS)
    cv2.fillPoly(canvas, [points], value)


def load_reasonseg_annotation(json_path: str, image_size: Sequence[int]) -> tuple:
    """Rasterize a ReasonSeg annotation exactly as LISA's ``get_mask_from_json``.

    Shapes labelled ``flag`` are skipped; the others are painted largest area first
    (so smaller shapes overwrite larger ones), with 255 where the label contains
    "ignore" and 1 otherwise. Points are truncated to int32 as in LISA.

    Args:
        json_path: The annotation file.
        image_size: ``(height, width)`` of its image.

    Returns:
        ``(mask, queries, is_sentence)``: (H, W) uint8 of 0/1/255, the list of texts and
        the ``is_sentence`` flag.
    """
    data = read_reasonseg_json(json_path)
    height, width = int(image_size[0]), int(image_size[1])
    painted = []
    for k, shape in enumerate(data['shapes']):
        label = str(shape.get('label', '')) if isinstance(shape, dict) else ''
        if label.lower() == 'flag':
            continue
        points = _shape_points(shape, k, json_path)  # (K, 2) int32
        area_map = np.zeros((height, width), dtype=np.uint8)
        _fill(area_map, points, 1)
        value = IGNORE_INDEX if 'ignore' in label.lower() else 1
        painted.append((int(area_map.sum()), points, value))
    mask = np.zeros((height, width), dtype=np.uint8)
    for _, points, value in sorted(painted, key=lambda x: x[0], reverse=True):
        _fill(mask, points, value)
    return mask, list(data['text']), bool(data.get('is_sentence', False))


@TRANSFORMS.register_module()
class LoadReasonSegAnnotation:
    """Rasterize ``results['json_path']`` at the loaded image's size into ``gt_masks``
    (N, H, W), the mask repeated ``results['num_masks']`` times (default 1; one per
    query turn, 0 for explanation-only answers); run after ``LoadImageFromFile``."""

    def __call__(self, results: dict) -> dict:
        mask, _, _ = load_reasonseg_annotation(results['json_path'], results['ori_shape'])
        results['gt_masks'] = np.repeat(mask[None], results.get('num_masks', 1), axis=0)
        return results


def load_explanations(path: str) -> list[dict]:
    """LISA's ``explanatory/train.json``: a list of ``{"image", "query", "outputs"}``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Explanatory file {path!r} not found; set explanatory_file, or explanatory=None.'
        )
    try:
        with open(path, encoding='utf-8') as f:
            items = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: not a UTF-8 JSON file ({err}).') from err
    if not isinstance(items, list):
        raise ValueError(f'{path}: expected a list of {{"image", "query", "outputs"}}.')
    return items


@DATASETS.register_module()
class ReasonSegDataset(SkipBadSamplesMixin, BaseDataset):
    """LISA's ReasonSeg: in training one sample per image, whose queries are drawn when
    it is read: ``num_classes_per_sample`` of them without replacement (all, in file
    order, when it has fewer), one turn each, all with the image's mask, as LISA's
    ``reason_seg_dataset.py``; in evaluation the first query of each image (as LISA
    validates).

    LISA draws an image uniformly and fresh queries at every visit. Here the draws are
    seeded with ``(seed, image index)`` and, inside a ``MixedDataset`` (LISA's mix, or a
    mix of this dataset alone) with ``FreshDrawSampler``, with the mix's draw index: each
    draw picks an image uniformly, and each visit new queries, templates and explanatory
    answer type, reproducible and the same after a resume.

    Args:
        data_root: Folder holding the split folders (``.../ReasonSeg``).
        split: Split folder name(s); ``'train|val'`` concatenates, as LISA's ``train_val``.
        query_type: ``'all'``, ``'short'`` (``is_sentence`` false) or ``'long'``.
        answers: Training answer templates (one ``<SEG>`` each).
        short_questions / long_questions: Training question templates.
        num_classes_per_sample: Queries (turns, masks) drawn per training sample
            (LISA: 3).
        explanatory: LISA's explanatory answers for the images listed in
            ``explanatory_file``, one choice per draw for all its queries: with this
            probability (LISA: 0.1) each query is answered by the explanation alone (no
            ``<SEG>``, no mask); otherwise, with equal chance, the usual answer, or the
            query + an explanatory question answered by ``"{answer} {explanation}"``.
            None (default): not used.
        explanatory_file: The explanations, relative to ``data_root``.
        explanatory_questions: Suffixes asking for an explanation (LISA's list).
        seed: Seed for the per-sample query, template and answer-type choices.
        on_error: ``'raise'`` stops at the first unreadable annotation with a message
            naming the file; ``'skip'`` leaves it out, counts it in ``skipped`` and logs
            a warning, and in training also replaces a sample that fails when read
            (undecodable image, bad shape; counted in ``runtime_skips``).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    METAINFO = dict(classes=('object',))

    def __init__(
        self,
        data_root: str,
        split: str = 'train',
        query_type: str = 'all',
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        long_questions: Sequence[str] = tuple(LONG_QUESTION_LIST),
        num_classes_per_sample: int = 1,
        explanatory: Optional[float] = None,
        explanatory_file: str = 'explanatory/train.json',
        explanatory_questions: Sequence[str] = tuple(EXPLANATORY_QUESTION_LIST),
        seed: int = 0,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        check_templates(
            'ReasonSegDataset', answers, short_questions, long_questions, explanatory_questions
        )
        if num_classes_per_sample < 1:
            raise ValueError(f'num_classes_per_sample={num_classes_per_sample}; expected >= 1.')
        if explanatory is not None and not 0 <= explanatory <= 1:
            raise ValueError(f'explanatory={explanatory}; expected a probability or None.')
        self.num_classes_per_sample, self.explanatory = num_classes_per_sample, explanatory
        self.explanatory_file = explanatory_file
        self.explanatory_questions = list(explanatory_questions)
        if query_type not in QUERY_TYPES:
            raise ValueError(f'query_type={query_type!r}; expected one of {QUERY_TYPES}.')
        self._init_on_error(on_error)
        self.split, self.query_type, self.seed = split, query_type, seed
        self.answers, self.short_questions = list(answers), list(short_questions)
        self.long_questions = list(long_questions)
        super().__init__(data_root=data_root, ann_file='', **kwargs)

    def _images(self) -> list[str]:
        paths = []
        for split in self.split.split('|'):
            folder = os.path.join(self.data_root, split)
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f'ReasonSeg split folder {folder!r} not found; set '
                    'data_root to the folder holding train/ val/ test/.'
                )
            paths += sorted(
                p
                for p in glob.glob(os.path.join(folder, '*'))
                if p.lower().endswith(IMAGE_EXTENSIONS)
            )
        return paths

    def _explanations(self) -> dict[str, str]:
        """Image file name -> explanation; empty unless ``explanatory`` is set."""
        if self.explanatory is None or self.test_mode:
            return {}
        path = os.path.join(self.data_root, self.explanatory_file)
        explanations = {}
        for i, item in enumerate(load_explanations(path)):
            if isinstance(item, dict) and all(
                isinstance(item.get(k), str) for k in EXPLANATORY_KEYS
            ):
                explanations[item['image']] = item['outputs']
                continue
            err = ValueError(f'{path}: item {i} needs "image" and "outputs" strings.')
            if self.on_error == 'raise':
                raise err
            self.skipped.append((path, str(err)))
        return explanations

    def _draw_texts(self, rng: np.random.Generator, texts: Sequence[str]) -> list[str]:
        """LISA's choice of queries: ``num_classes_per_sample`` without replacement, or
        all of them (in file order) when the image has fewer."""
        if len(texts) < self.num_classes_per_sample:
            return list(texts)
        picked = rng.choice(len(texts), size=self.num_classes_per_sample, replace=False)
        return [texts[int(k)] for k in picked]

    def _train_sample(
        self, idx: int, texts: Sequence[str], is_sentence: bool, explanation: Optional[str]
    ) -> dict:
        """Queries drawn from the image's ``texts``, one turn each, all with the image's
        mask, answered as LISA does (drawn when the sample is read: anew at every
        ``MixedDataset`` draw)."""
        rng = sample_rng(self.seed, idx)
        texts = self._draw_texts(rng, texts)
        answer_type = ANSWER_TYPES[0]
        if explanation is not None:
            explain_only = rng.random() < self.explanatory
            answer_type = ANSWER_TYPES[2] if explain_only else ANSWER_TYPES[int(rng.integers(2))]
        questions, answers = [], []
        for text in texts:
            question = fill_question(
                rng, text, is_sentence, self.short_questions, self.long_questions
            )
            if answer_type == 'seg+explanation':
                question = f'{IMAGE_TOKEN}\n{text} {rng.choice(self.explanatory_questions)}'
                answer = f'{rng.choice(self.answers)} {explanation}'
            elif answer_type == 'explanation':
                question, answer = f'{IMAGE_TOKEN}\n{text}', explanation
            else:
                answer = str(rng.choice(self.answers))
            questions.append(question)
            answers.append(answer)
        turns = to_turns(questions, answers)
        return dict(
            conversations=turns,
            question=turns[0]['question'],
            answer=turns[0]['answer'],
            num_masks=0 if answer_type == 'explanation' else len(texts),
            answer_type=answer_type,
        )

    def _eval_sample(self, text: str, is_sentence: bool) -> dict:
        """LISA's fixed validation prompt and answer."""
        prompt = VAL_LONG_PROMPT if is_sentence else VAL_SHORT_PROMPT
        return dict(question=prompt.format(text=text), answer=VAL_ANSWER)

    def load_data_list(self) -> list[dict]:
        """One sample per image with a query (its queries are drawn when it is read in
        training); the first query per image in test mode."""
        data_list, explanations = [], self._explanations()
        for img_path in self._images():
            json_path = os.path.splitext(img_path)[0] + '.json'
            try:
                data = read_reasonseg_json(json_path)
            except DATA_ERRORS as err:
                self._bad(err, json_path)
                continue
            is_sentence = bool(data.get('is_sentence', False))
            if self.query_type != 'all' and is_sentence != (self.query_type == 'long'):
                continue
            if self.test_mode:
                samples = [self._eval_sample(data['text'][0], is_sentence)] if data['text'] else []
            else:
                explanation = explanations.get(os.path.basename(img_path))
                texts = list(data['text'])
                entry = dict(entry_idx=len(data_list), texts=texts, explanation=explanation)
                samples = [entry] if texts else []
            for sample in samples:
                sample.update(
                    sample_idx=len(data_list),
                    img_path=img_path,
                    json_path=json_path,
                    is_sentence=is_sentence,
                    query_type='long' if is_sentence else 'short',
                )
                data_list.append(sample)
        self._log_skipped(f'annotation(s) in {self.split}')
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The sample; a training sample's queries, templates and answer type are drawn here."""
        info = super().get_data_info(idx)
        if 'entry_idx' in info:  # seeded by the image, whatever `indices` selects
            entry, texts = info.pop('entry_idx'), info.pop('texts')
            explanation = info.pop('explanation')
            info.update(self._train_sample(entry, texts, info['is_sentence'], explanation))
        return info
