"""The refCOCO family (refcoco, refcoco+, refcocog, refclef) from the REFER release files.

Layout (LISA's ``refer_seg`` folder)::

    {data_root}/{dataset}/refs({split_by}).p    pickle: list of refs (ref_id, ann_id,
                                                image_id, split, sentences[{sent}], ...)
    {data_root}/{dataset}/instances.json        COCO: images, annotations (polygons / RLE)
    {data_root}/{img_dir}/{file_name}           images/mscoco/images/train2014 (COCO) or
                                                images/saiapr_tc-12 (refclef)

Masks are decoded with pycocotools (:mod:`lisakit.datasets.coco_masks`) when a sample
is read. The pickles are loaded with an unpickler that builds nothing but plain data,
so a malicious file is refused instead of run.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections import defaultdict
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from lisakit.registry import DATASETS

from .bad_samples import SkipBadSamplesMixin
from .class_queries import init_short_queries, short_turns, val_query
from .coco_masks import check_segmentation, segmentation_to_mask
from .draws import sample_rng
from .image_info import image_hw
from .templates import ANSWER_LIST, SHORT_QUESTION_LIST

#: splitBy of each REFER dataset when not given (LISA: umd for refcocog, unc otherwise).
DEFAULT_SPLIT_BY = dict(refcocog='umd')
FALLBACK_SPLIT_BY = 'unc'
#: Image folder (under data_root) of each dataset when not given.
DEFAULT_IMG_DIRS = dict(refclef='images/saiapr_tc-12')
COCO_IMG_DIR = 'images/mscoco/images/train2014'
#: REFER's split names; testA/B/C match by substring and 'test' any test split, as
#: REFER's ``getRefIds`` does.
SPLITS = ('train', 'val', 'test', 'testA', 'testB', 'testC')
REF_KEYS = ('ann_id', 'image_id', 'split', 'sentences')
IMAGE_KEYS = ('file_name', 'height', 'width')
#: The only globals a REFER pickle may name (Python 2 pickles spell builtins ``__builtin__``).
SAFE_PICKLE_GLOBALS = frozenset(
    (module, name)
    for module in ('builtins', '__builtin__')
    for name in ('set', 'frozenset', 'list', 'dict', 'tuple')
)
PICKLE_ENCODINGS = ('utf-8', 'latin1')


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds only lists, dicts, strings, numbers and sets."""

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'refusing to build {module}.{name}: a REFER file holds only lists, dicts, '
            'strings and numbers, and unpickling other objects could run code'
        )


def _error(path: str, reason: str, cls: type = ValueError) -> Exception:
    err = cls(f'{path}: {reason}')
    err.bad_file = path
    return err


def load_refer_pickle(path: str) -> list[dict]:
    """Load a REFER ``refs(...).p`` with :class:`PlainDataUnpickler`.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a pickled list of dicts or names any other object.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'REFER file {path!r} not found; set data_root to the folder holding '
            f'{{dataset}}/refs(splitBy).p (e.g. data/refer_seg) and check dataset/split_by.'
        )
    with open(path, 'rb') as f:
        data = f.read()
    for encoding in PICKLE_ENCODINGS:  # Python 2 pickles hold byte strings
        try:
            refs = PlainDataUnpickler(io.BytesIO(data), encoding=encoding).load()
            break
        except UnicodeDecodeError:
            continue
        except Exception as err:  # any unpickling failure means a bad file
            raise _error(path, f'not a valid REFER pickle ({err}).') from err
    else:
        raise _error(path, f'its strings are none of {PICKLE_ENCODINGS}.')
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise _error(path, f'expected a pickled list of ref dicts, got {type(refs).__name__}.')
    return refs


def read_coco_json(path: str, required: Sequence[str], not_found: str) -> dict:
    """A COCO-format JSON file as a dict holding the ``required`` keys.

    Raises:
        FileNotFoundError: With the message ``not_found`` if the file is missing.
        ValueError: Naming the file, for invalid JSON or missing keys.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(not_found)
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _error(path, f'invalid JSON ({err}); re-download the file.') from err
    missing = [k for k in required if not isinstance(data, dict) or k not in data]
    if missing:
        raise _error(path, f'missing {missing}; expected a COCO instances file.')
    return data


def load_coco_instances(path: str) -> tuple[dict, dict]:
    """``(images by id, annotations by id)`` of a COCO ``instances.json``."""
    not_found = (
        f'COCO annotation file {path!r} not found; it ships with the REFER release '
        'next to refs(splitBy).p.'
    )
    data = read_coco_json(path, ('images', 'annotations'), not_found)
    images = {img['id']: img for img in data['images'] if isinstance(img, dict) and 'id' in img}
    anns = {a['id']: a for a in data['annotations'] if isinstance(a, dict) and 'id' in a}
    return images, anns


def split_matches(split: str, ref_split: str) -> bool:
    """REFER's ``getRefIds`` split rule."""
    if split == 'test':
        return 'test' in ref_split
    if split.startswith('test'):
        return split in ref_split
    return ref_split == split


@DATASETS.register_module()
class RefCOCODataset(SkipBadSamplesMixin, BaseDataset):
    """Referring segmentation on refcoco / refcoco+ / refcocog / refclef.

    Training: with ``num_classes_per_sample=1`` one sample per (ref, sentence), the
    sentence asked through a short-question template; with N > 1 one sample per
    image holding up to N of its sentences (drawn without replacement, seeded), one
    conversation turn and one mask each. Evaluation (``test_mode``): every sentence of
    every ref of the split is its own sample with LISA's prompt and answer ``<SEG>.``.

    Args:
        data_root: Folder holding ``{dataset}/`` and the image folders.
        dataset: ``'refcoco'``, ``'refcoco+'``, ``'refcocog'`` or ``'refclef'``.
        split_by: ``'unc'``, ``'umd'``, ``'google'``...; default umd for refcocog, unc
            otherwise.
        split: ``'train'``, ``'val'``, ``'test'``, ``'testA'``, ``'testB'`` (or ``'testC'``).
        img_dir: Image folder, relative to ``data_root`` or absolute; default
            ``images/saiapr_tc-12`` for refclef, ``images/mscoco/images/train2014``
            otherwise.
        num_classes_per_sample: Masks per training sample (LISA: 3).
        answers / short_questions: Training templates (``{class_name}`` = sentence).
        seed: Seed of the per-sample draws.
        empty_segmentation: An annotation whose ``segmentation`` is ``[]``: ``'empty_mask'``
            gives an all-zero mask, as LISA does; ``'error'`` treats it as malformed
            (raised or skipped by ``on_error``).
        on_error: ``'raise'`` or ``'skip'`` (see :mod:`lisakit.datasets.bad_samples`).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    METAINFO = dict(classes=('object',))
    EMPTY_SEGMENTATION = ('empty_mask', 'error')
    #: Per-turn keys of a training sample that :meth:`_draw` subsamples together.
    DRAW_KEYS = ('segmentations', 'ref_ids', 'texts')

    def __init__(
        self,
        data_root: str,
        dataset: str = 'refcoco',
        split_by: Optional[str] = None,
        split: str = 'train',
        img_dir: Optional[str] = None,
        num_classes_per_sample: int = 1,
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        seed: int = 0,
        empty_segmentation: str = 'empty_mask',
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        if empty_segmentation not in self.EMPTY_SEGMENTATION:
            raise ValueError(
                f'empty_segmentation={empty_segmentation!r}; expected one of '
                f'{self.EMPTY_SEGMENTATION}.'
            )
        self.empty_mask = empty_segmentation == 'empty_mask'
        if split not in SPLITS:
            raise ValueError(f'split={split!r}; expected one of {SPLITS}.')
        init_short_queries(self, num_classes_per_sample, answers, short_questions)
        self._init_on_error(on_error)
        self.dataset, self.split, self.seed = dataset, split, seed
        self.split_by = split_by or DEFAULT_SPLIT_BY.get(dataset, FALLBACK_SPLIT_BY)
        self.img_dir = img_dir or DEFAULT_IMG_DIRS.get(dataset, COCO_IMG_DIR)
        super().__init__(data_root=data_root, ann_file='', **kwargs)

    @property
    def refs_file(self) -> str:
        """Path of the ``refs({split_by}).p`` pickle."""
        return os.path.join(self.data_root, self.dataset, f'refs({self.split_by}).p')

    @property
    def instances_file(self) -> str:
        """Path of the COCO ``instances.json``."""
        return os.path.join(self.data_root, self.dataset, 'instances.json')

    def _sentences(self, ref: dict, ref_id: Any) -> list[str]:
        sents = ref['sentences']
        if not isinstance(sents, list) or not sents:
            raise _error(self.refs_file, f'ref {ref_id} has no sentences.')
        texts = []
        for sent in sents:
            text = sent.get('sent') if isinstance(sent, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise _error(self.refs_file, f'ref {ref_id} has a sentence without text: {sent!r}.')
            texts.append(text)
        return texts

    def _target(self, ref: dict, images: dict, anns: dict) -> dict:
        """A validated ref: image path and size, segmentation, sentences."""
        ref_id = ref.get('ref_id', '?')
        self._check_ref_keys(ref, ref_id, REF_KEYS)
        ann, img = anns.get(ref['ann_id']), images.get(ref['image_id'])
        if ann is None or img is None:
            which = 'annotation' if ann is None else 'image'
            key = ref['ann_id'] if ann is None else ref['image_id']
            raise _error(self.instances_file, f'no {which} with id {key} (ref {ref_id}).')
        missing = [k for k in IMAGE_KEYS if k not in img] + (
            [] if 'segmentation' in ann else ['segmentation']
        )
        if missing:
            raise _error(self.instances_file, f'ref {ref_id}: missing keys {missing}.')
        try:
            height, width = int(img['height']), int(img['width'])
            check_segmentation(ann['segmentation'], height, width, allow_empty=self.empty_mask)
        except (TypeError, ValueError) as err:
            msg = f'annotation {ref["ann_id"]} (ref {ref_id}): {err}.'
            raise _error(self.instances_file, msg) from err
        return self._record(ref, ref_id, img, (height, width), ann['segmentation'])

    def _check_ref_keys(self, ref: dict, ref_id: Any, keys: Sequence[str]) -> None:
        """Raise a ValueError naming the refs file when ``ref`` lacks any of ``keys``."""
        missing = [k for k in keys if k not in ref]
        if missing:
            raise _error(self.refs_file, f'ref {ref_id} misses keys {missing}; need {keys}.')

    def _record(self, ref: dict, ref_id: Any, img: dict, hw: tuple, segmentation: Any) -> dict:
        """The target dict of a validated ref; raises FileNotFoundError without its image."""
        img_path = os.path.join(self.data_root, self.img_dir, img['file_name'])
        if not os.path.isfile(img_path):
            msg = f'image of ref {ref_id} not found; check img_dir ({self.img_dir!r}).'
            raise _error(img_path, msg, FileNotFoundError)
        return dict(
            ref_id=ref_id,
            image_id=ref['image_id'],
            img_path=img_path,
            mask_size=hw,
            segmentation=segmentation,
            sentences=self._sentences(ref, ref_id),
        )

    def _load_refs(self) -> list[dict]:
        """The refs of the release file (a subclass may read another format)."""
        return load_refer_pickle(self.refs_file)

    def _targets(self) -> list[dict]:
        refs = self._load_refs()
        images, anns = load_coco_instances(self.instances_file)
        chosen = [r for r in refs if split_matches(self.split, str(r.get('split')))]
        if not chosen:
            present = sorted({str(r.get('split')) for r in refs})
            raise ValueError(
                f'{self.refs_file}: no ref in split {self.split!r}; its splits are {present}.'
            )
        targets = []
        for ref in chosen:
            try:
                targets.append(self._target(ref, images, anns))
            except (ValueError, FileNotFoundError) as err:
                self._bad(err, getattr(err, 'bad_file', self.refs_file))
        return targets

    def _sample(self, idx: int, pairs: list[tuple[dict, str]]) -> dict:
        """A data info for (target, sentence) pairs of one image (in training with N > 1
        all of the image's pairs: :meth:`_draw` picks N of them when the sample is read)."""
        first = pairs[0][0]
        info = dict(
            sample_idx=idx,
            entry_idx=idx,
            img_path=first['img_path'],
            mask_size=first['mask_size'],
            segmentations=[t['segmentation'] for t, _ in pairs],
            ref_ids=[t['ref_id'] for t, _ in pairs],
            texts=[s for _, s in pairs],
            query_type='short',
            is_sentence=False,
        )
        if self.test_mode:
            info.update(val_query(pairs[0][1]))
        return info

    def _draw(self, info: dict) -> None:
        """Training draws, made when the sample is read (new ones at every
        ``MixedDataset`` draw): up to N of the image's sentences, then the templates."""
        entry = info.pop('entry_idx')
        if self.num_classes_per_sample > 1:
            pool = len(info['texts'])
            rng = sample_rng(self.seed, entry, pool)
            num = min(self.num_classes_per_sample, pool)
            picked = [int(i) for i in rng.choice(pool, size=num, replace=False)]
            for key in self.DRAW_KEYS:
                info[key] = [info[key][i] for i in picked]
        rng = sample_rng(self.seed, entry)
        info.update(self._turns(info, rng))

    def _turns(self, info: dict, rng) -> dict:
        """Training conversation of a sample's (drawn) sentences."""
        return short_turns(info['texts'], rng, self.short_questions, self.answers)

    def load_data_list(self) -> list[dict]:
        """One sample per (ref, sentence), or per image with N > 1 in training."""
        targets = self._targets()
        self._log_skipped(f'refs of {self.dataset}({self.split_by}) {self.split}')
        if not targets:
            raise ValueError(
                f'{self.refs_file}: no usable ref in split {self.split!r}; all '
                f'{len(self.skipped)} were bad, e.g. {self.skipped[0][1]}'
            )
        if self.test_mode or self.num_classes_per_sample == 1:
            pairs = [[(t, s)] for t in targets for s in t['sentences']]
            return [self._sample(i, p) for i, p in enumerate(pairs)]
        by_image = defaultdict(list)
        for t in targets:
            by_image[t['image_id']] += [(t, s) for s in t['sentences']]
        return [self._sample(i, by_image[key]) for i, key in enumerate(sorted(by_image, key=str))]

    def get_data_info(self, idx: int) -> dict:
        """The sample with ``gt_masks`` (N, H, W) uint8 0/1 decoded from its
        segmentations (one per ``<SEG>``)."""
        info = super().get_data_info(idx)
        if not self.test_mode:
            self._draw(info)
        info.pop('entry_idx', None)
        height, width = info['mask_size']
        self._check_image_size(info['img_path'], height, width)
        info['gt_masks'] = self._gt_masks(info, height, width)  # (N, H, W)
        return info

    def _check_image_size(self, img_path: str, height: int, width: int) -> None:
        actual = image_hw(img_path)
        if actual != (height, width):
            raise ValueError(
                f'{img_path}: the image is {actual[1]}x{actual[0]} (after EXIF '
                f'rotation) but {self.instances_file} says {width}x{height}.'
            )

    def _gt_masks(self, info: dict, height: int, width: int) -> np.ndarray:
        """(N, H, W) uint8 masks of the sample's segmentations (popped from ``info``)."""
        masks = [
            segmentation_to_mask(s, height, width, allow_empty=self.empty_mask)
            for s in info.pop('segmentations')
        ]
        return np.stack(masks)  # (N, H, W)
