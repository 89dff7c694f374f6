"""gRefCOCO (generalized referring expressions: 0, 1 or many targets per expression).

Layout (GRES / LISA's ``refer_seg`` folder)::

    {data_root}/grefcoco/grefs(unc).json     list of refs: ref_id, image_id, split,
                                             sentences[{sent}], ann_id (a list of
                                             COCO annotation ids; [-1] = no target),
                                             no_target (bool), category_id (a list)
    {data_root}/grefcoco/instances.json      COCO: images, annotations
    {data_root}/images/mscoco/images/train2014/{file_name}

``grefs(unc).p`` (a pickle of the same list) is read when no ``.json`` exists, with
:class:`lisakit.datasets.refcoco.PlainDataUnpickler`. An expression has no target when
its ``ann_id`` is ``[-1]`` (or ``-1``) or its ``no_target`` flag is set.

Masks (decoded when a sample is read, :mod:`lisakit.datasets.coco_masks`):

- ``target_mode='merged'`` (LISA): one ``<SEG>`` per expression, the union of its
  targets' masks; a no-target expression gets an all-zero mask.
- ``target_mode='per_object'``: one ``<SEG>`` per target, ordered left to right by the
  mask's leftmost pixel column, then its topmost row, then annotation id
  (:func:`lisakit.datasets.coco_masks.order_left_to_right`); the answer lists them
  ("Sure, they are <SEG>, <SEG> and <SEG>.").
- No-target expressions in training are answered with a rejection text (no ``<SEG>``,
  no mask: ``reject_answers``); with ``reject_answers=None`` they keep LISA's form (a
  ``<SEG>`` answer and an all-zero mask). In evaluation (``test_mode``) they always get
  LISA's ``<SEG>.`` and an all-zero mask, so the metric sees what the model predicts
  (``GRefCOCOMetric``: rejected = nothing predicted).
- Crowd annotations (``iscrowd=1``, RLE): ``crowd='include'`` decodes them as LISA
  does; ``'skip'`` leaves them out as GRES's ``G_REFER.getMaskByRef`` does.

Samples carry ``no_target`` and ``num_targets`` (copied to the data sample's metainfo).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import numpy as np

from lisakit.registry import DATASETS

from .class_queries import val_query
from .coco_masks import check_segmentation, order_left_to_right, segmentation_to_mask
from .refcoco import (
    COCO_IMG_DIR,
    IMAGE_KEYS,
    RefCOCODataset,
    _error,
    load_refer_pickle,
)
from .templates import (
    MULTI_ANSWER_LIST,
    REJECT_ANSWER_LIST,
    check_templates,
    fill_segs,
    to_turns,
)

TARGET_MODES = ('merged', 'per_object')
CROWD_MODES = ('include', 'skip')
#: ``ann_id`` of a no-target expression.
NO_TARGET_ANN_ID = -1
GREF_KEYS = ('ann_id', 'image_id', 'split', 'sentences')
#: Evaluation answer template of per-object mode (``"<SEG>, <SEG> and <SEG>."``).
VAL_MULTI_ANSWER = '{segs}.'


def load_grefs(json_path: str, pickle_path: str) -> list[dict]:
    """The refs of ``grefs(splitBy).json``, else of ``grefs(splitBy).p``.

    Raises:
        FileNotFoundError: If neither file exists.
        ValueError: If the file is not a list of ref dicts.
    """
    if not os.path.isfile(json_path):
        if os.path.isfile(pickle_path):
            return load_refer_pickle(pickle_path)
        raise FileNotFoundError(
            f'gRefCOCO file {json_path!r} (or {os.path.basename(pickle_path)}) not found; '
            'set data_root to the folder holding grefcoco/grefs(unc).json.'
        )
    try:
        with open(json_path, encoding='utf-8') as f:
            refs = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _error(json_path, f'invalid JSON ({err}); re-download the file.') from err
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise _error(json_path, f'expected a list of ref objects, got {type(refs).__name__}.')
    return refs


@DATASETS.register_module()
class GRefCOCODataset(RefCOCODataset):
    """gRefCOCO: referring expressions with zero, one or several target objects.

    Reads as :class:`RefCOCODataset` (one sample per expression in evaluation; per
    (ref, sentence) or per image with ``num_classes_per_sample`` > 1 in training) with
    the masks and answers of the module docstring.

    Args:
        data_root: Folder holding ``grefcoco/`` and the image folder.
        dataset: Folder of the release files (``'grefcoco'``).
        split_by: ``'unc'`` (the release's only split).
        split: ``'train'``, ``'val'``, ``'testA'`` or ``'testB'``.
        img_dir: Image folder, relative to ``data_root`` or absolute.
        target_mode: ``'merged'`` or ``'per_object'``.
        crowd: ``'include'`` (LISA) or ``'skip'`` (GRES) crowd annotations.
        multi_answers: Per-object answers for 2+ targets, with ``{segs}``.
        reject_answers: Training answers to a no-target expression (no ``<SEG>``);
            None keeps LISA's ``<SEG>`` answer and an all-zero mask.
        on_error: ``'raise'`` or ``'skip'`` bad refs (:mod:`lisakit.datasets.bad_samples`).
        **kwargs: The other arguments of :class:`RefCOCODataset` (``answers``,
            ``short_questions``, ``num_classes_per_sample``, ``seed``, ``on_error``,
            ``empty_segmentation``, ``pipeline``, ``test_mode``, ...).
    """

    DRAW_KEYS = ('segmentations', 'ref_ids', 'texts', 'no_targets')

    def __init__(
        self,
        data_root: str,
        dataset: str = 'grefcoco',
        split_by: str = 'unc',
        split: str = 'train',
        img_dir: str = COCO_IMG_DIR,
        target_mode: str = 'merged',
        crowd: str = 'include',
        multi_answers: Sequence[str] = tuple(MULTI_ANSWER_LIST),
        reject_answers: Optional[Sequence[str]] = tuple(REJECT_ANSWER_LIST),
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        if target_mode not in TARGET_MODES:
            raise ValueError(f'target_mode={target_mode!r}; expected one of {TARGET_MODES}.')
        if crowd not in CROWD_MODES:
            raise ValueError(f'crowd={crowd!r}; expected one of {CROWD_MODES}.')
        check_templates(
            type(self).__name__, multi_answers=multi_answers, reject_answers=reject_answers or ()
        )
        if reject_answers is not None and not reject_answers:
            raise ValueError('reject_answers is empty; give answers or None (LISA).')
        self.target_mode, self.crowd = target_mode, crowd
        self.multi_answers = list(multi_answers)
        self.reject_answers = None if reject_answers is None else list(reject_answers)
        super().__init__(
            data_root,
            dataset=dataset,
            split_by=split_by,
            split=split,
            img_dir=img_dir,
            on_error=on_error,
            **kwargs,
        )

    @property
    def _refs_base(self) -> str:
        return os.path.join(self.data_root, self.dataset, f'grefs({self.split_by})')

    @property
    def refs_file(self) -> str:
        """Path of ``grefs({split_by}).json`` (``.p`` when only the pickle exists)."""
        json_path, pickle_path = self._refs_base + '.json', self._refs_base + '.p'
        return (
            pickle_path
            if os.path.isfile(pickle_path) and not os.path.isfile(json_path)
            else json_path
        )

    def _load_refs(self) -> list[dict]:
        return load_grefs(self._refs_base + '.json', self._refs_base + '.p')

    def _ann_ids(self, ref: dict, ref_id: Any) -> list:
        """The ref's annotation ids; ``[]`` for a no-target expression."""
        ids = ref['ann_id'] if isinstance(ref['ann_id'], list) else [ref['ann_id']]
        no_target = NO_TARGET_ANN_ID in ids or bool(ref.get('no_target', False))
        if no_target and ids not in ([NO_TARGET_ANN_ID], []):
            raise _error(
                self.refs_file,
                f'ref {ref_id} is marked no-target but has ann_id {ids}; expected [-1].',
            )
        if not no_target and not ids:
            raise _error(self.refs_file, f'ref {ref_id} has no ann_id and is not no-target.')
        return [] if no_target else ids

    def _segmentations(self, ids: list, anns: dict, ref_id: Any, hw: tuple) -> list:
        """Checked segmentations of the ref's annotations (crowd ones per ``crowd``)."""
        segs = []
        for ann_id in ids:
            ann = anns.get(ann_id)
            if ann is None:
                raise _error(self.instances_file, f'no annotation with id {ann_id} (ref {ref_id}).')
            if 'segmentation' not in ann:
                raise _error(self.instances_file, f'annotation {ann_id} has no segmentation.')
            if ann.get('iscrowd') and self.crowd == 'skip':
                continue
            try:
                check_segmentation(ann['segmentation'], *hw, allow_empty=self.empty_mask)
            except (TypeError, ValueError) as err:
                msg = f'annotation {ann_id} (ref {ref_id}): {err}.'
                raise _error(self.instances_file, msg) from err
            segs.append(ann['segmentation'])
        return segs

    def _target(self, ref: dict, images: dict, anns: dict) -> dict:
        """A validated ref: image path and size, the targets' segmentations, sentences."""
        ref_id = ref.get('ref_id', '?')
        self._check_ref_keys(ref, ref_id, GREF_KEYS)
        ids = self._ann_ids(ref, ref_id)
        img = images.get(ref['image_id'])
        if img is None or any(k not in img for k in IMAGE_KEYS):
            msg = f'image {ref["image_id"]} (ref {ref_id}) missing or without {IMAGE_KEYS}.'
            raise _error(self.instances_file, msg)
        height, width = int(img['height']), int(img['width'])
        segs = self._segmentations(ids, anns, ref_id, (height, width))
        return dict(self._record(ref, ref_id, img, (height, width), segs), no_target=not ids)

    def _sample(self, idx: int, pairs: list[tuple[dict, str]]) -> dict:
        info = super()._sample(idx, pairs)
        info['no_targets'] = [t['no_target'] for t, _ in pairs]
        if self.test_mode:
            info.update(val_query(pairs[0][1]))
            num = len(pairs[0][0]['segmentation'])
            if self.target_mode == 'per_object' and num > 1:
                info['answer'] = fill_segs(VAL_MULTI_ANSWER, num)
        return info

    def _answer(self, rng: np.random.Generator, no_target: bool, num: int) -> str:
        if no_target and self.reject_answers is not None:
            return self.reject_answers[int(rng.integers(len(self.reject_answers)))]
        if self.target_mode == 'merged' or num <= 1:
            return self.answers[int(rng.integers(len(self.answers)))]
        return fill_segs(self.multi_answers[int(rng.integers(len(self.multi_answers)))], num)

    def _turns(self, info: dict, rng: np.random.Generator) -> dict:
        """One turn per drawn expression: question, then answer (LISA's draw order)."""
        questions, answers = [], []
        for text, segs, no_target in zip(info['texts'], info['segmentations'], info['no_targets']):
            question = self.short_questions[int(rng.integers(len(self.short_questions)))]
            questions.append(question.format(class_name=text.strip().lower()))
            answers.append(self._answer(rng, no_target, len(segs)))
        turns = to_turns(questions, answers)
        return dict(conversations=turns, question=turns[0]['question'], answer=turns[0]['answer'])

    def _masks(self, segs: list, no_target: bool, hw: tuple) -> list[np.ndarray]:
        """The (H, W) masks of one expression (see the module docstring)."""
        if no_target:
            rejected = self.reject_answers is not None and not self.test_mode
            return [] if rejected else [np.zeros(hw, np.uint8)]
        if not segs:  # every target a skipped crowd annotation
            return [np.zeros(hw, np.uint8)]
        masks = np.stack([segmentation_to_mask(s, *hw, allow_empty=self.empty_mask) for s in segs])
        if self.target_mode == 'merged' or len(masks) <= 1:
            return [masks.max(0)]  # (H, W) union
        return [masks[k] for k in order_left_to_right(masks)]

    def _gt_masks(self, info: dict, height: int, width: int) -> np.ndarray:
        """(N, H, W) uint8 masks of the sample's expressions; sets ``no_target`` (every
        expression has none) and ``num_targets`` (target masks before merging)."""
        segmentations = info.pop('segmentations')
        masks = []
        for segs, no_target in zip(segmentations, info['no_targets']):
            masks += self._masks(segs, no_target, (height, width))
        info['no_target'] = all(info['no_targets'])
        info['num_targets'] = sum(len(s) for s in segmentations)
        if not masks:
            return np.zeros((0, height, width), np.uint8)
        return np.stack(masks)  # (N, H, W)
