"""ReasonSeg (LISA's folder format) and its mask rasterization.

Layout: ``{data_root}/{split}/{name}.jpg`` with ``{name}.json`` holding ``text`` (a list of
queries), ``is_sentence`` (long sentence vs short phrase) and labelme-style ``shapes``
(``label``, ``points``). Masks follow LISA's ``get_mask_from_json`` exactly.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from lisakit.registry import DATASETS, TRANSFORMS
from lisakit.utils.constants import IGNORE_INDEX

from .templates import ANSWER_LIST, LONG_QUESTION_LIST, SHORT_QUESTION_LIST, VAL_ANSWER

QUERY_TYPES = ('all', 'short', 'long')
ON_ERROR = ('raise', 'skip')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
#: LISA's validation prompts (note the space after the newline, as in LISA).
VAL_LONG_PROMPT = '<image>\n {text} Please output segmentation mask.'
VAL_SHORT_PROMPT = '<image>\n What is {text} in this image? Please output segmentation mask.'
POLYLINE_THICKNESS = 1


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
    for shape in data['shapes']:
        label = str(shape.get('label', ''))
        if label.lower() == 'flag':
            continue
        points = np.asarray(shape.get('points', []), dtype=np.float64).astype(np.int32)
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
    (1, H, W); run after ``LoadImageFromFile``."""

    def __call__(self, results: dict) -> dict:
        mask, _, _ = load_reasonseg_annotation(results['json_path'], results['ori_shape'])
        results['gt_masks'] = mask[None]
        return results


@DATASETS.register_module()
class ReasonSegDataset(BaseDataset):
    """LISA's ReasonSeg: one sample per (image, query) in training, the first query of
    each image in evaluation (as LISA validates).

    Args:
        data_root: Folder holding the split folders (``.../ReasonSeg``).
        split: Split folder name(s); ``'train|val'`` concatenates, as LISA's ``train_val``.
        query_type: ``'all'``, ``'short'`` (``is_sentence`` false) or ``'long'``.
        answers: Training answer templates (one ``<SEG>`` each).
        short_questions / long_questions: Training question templates.
        seed: Seed for the per-sample template choice.
        on_error: ``'raise'`` stops at the first unreadable annotation with a message
            naming the file; ``'skip'`` leaves it out, counts it in ``skipped`` and logs
            a warning.
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
        seed: int = 0,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        if query_type not in QUERY_TYPES:
            raise ValueError(f'query_type={query_type!r}; expected one of {QUERY_TYPES}.')
        if on_error not in ON_ERROR:
            raise ValueError(f'on_error={on_error!r}; expected one of {ON_ERROR}.')
        self.split, self.query_type, self.seed = split, query_type, seed
        self.on_error = on_error
        #: (annotation path, reason) of every annotation skipped with on_error='skip'.
        self.skipped: list[tuple[str, str]] = []
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

    def _question(self, text: str, is_sentence: bool, rng: Optional[np.random.Generator]) -> str:
        if rng is None:  # evaluation: LISA's fixed prompts
            return (VAL_LONG_PROMPT if is_sentence else VAL_SHORT_PROMPT).format(text=text)
        if is_sentence:
            return str(rng.choice(self.long_questions)).format(sent=text)
        return str(rng.choice(self.short_questions)).format(class_name=text.lower())

    def load_data_list(self) -> list[dict]:
        """One entry per (image, query); only the first query per image in test mode."""
        data_list = []
        for img_path in self._images():
            json_path = os.path.splitext(img_path)[0] + '.json'
            try:
                data = read_reasonseg_json(json_path)
            except (FileNotFoundError, ValueError) as err:
                if self.on_error == 'raise':
                    raise
                self.skipped.append((json_path, str(err)))
                continue
            is_sentence = bool(data.get('is_sentence', False))
            if self.query_type != 'all' and is_sentence != (self.query_type == 'long'):
                continue
            texts = data['text'][:1] if self.test_mode else data['text']
            for text in texts:
                idx = len(data_list)
                rng = None if self.test_mode else np.random.default_rng([self.seed, idx])
                data_list.append(
                    dict(
                        sample_idx=idx,
                        img_path=img_path,
                        json_path=json_path,
                        question=self._question(text, is_sentence, rng),
                        is_sentence=is_sentence,
                        query_type='long' if is_sentence else 'short',
                        answer=VAL_ANSWER if rng is None else str(rng.choice(self.answers)),
                    )
                )
        if self.skipped:
            print_log(
                f'ReasonSegDataset skipped {len(self.skipped)} bad annotation(s) in '
                f'{self.split}, e.g. {self.skipped[0][1]}',
                logger='current',
                level=logging.WARNING,
            )
        return data_list
