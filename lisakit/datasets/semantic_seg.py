"""Semantic segmentation (ADE20K, COCO-Stuff, any image + label-PNG folder) as
class-name queries, as LISA trains on them.

Layout: ``{data_root}/{img_dir}/{stem}{img_suffix}`` with a label map
``{data_root}/{seg_dir}/{stem}{seg_suffix}`` (one class index per pixel), ``{split}``
in the folder names filled in from ``split``. ADE20K (``ADEChallengeData2016``):
``images/training/*.jpg`` + ``annotations/training/*.png`` with ``reduce_zero_label``
(0 = "other" becomes 255, v becomes v - 1). COCO-Stuff: ``coco/train2017/*.jpg`` +
``cocostuff/train2017/*.png`` (stuffthingmaps: value = class index, 255 = unlabeled).
Mapillary Vistas: ``training/images/*.jpg`` + ``training/v2.0/labels/*.png`` with the
classes of ``config_v2.0.json`` (every label value a class, as LISA reads it).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image, UnidentifiedImageError

from lisakit.registry import DATASETS
from lisakit.utils.constants import IGNORE_INDEX

from .bad_samples import SkipBadSamplesMixin
from .class_queries import init_short_queries, short_turns, val_query
from .draws import sample_rng
from .image_info import image_hw
from .semseg_classes import load_class_names
from .templates import ANSWER_LIST, SHORT_QUESTION_LIST

#: Label value that ``reduce_zero_label`` turns into ``IGNORE_INDEX``.
ZERO_LABEL = 0
INTEGER_KINDS = 'ui'
#: Lookup-table entry of a raw value that is not a class.
NOT_A_CLASS = -1
LOOKUP_SIZE_8BIT = 256
#: ``classes='mapillary'``: the names of ``{data_root}/config_v2.0.json``.
MAPILLARY = 'mapillary'
MAPILLARY_CONFIG = 'config_v2.0.json'


@DATASETS.register_module()
class SemanticSegDataset(SkipBadSamplesMixin, BaseDataset):
    """Images with label maps, asked about by class name.

    Training: one sample per image; ``num_classes_per_sample`` classes present in its
    label map are drawn without replacement (seeded by the image's index), each asked
    in its own conversation turn through a short-question template, with one mask.
    Evaluation (``test_mode``): one sample per (image, class present) with LISA's
    prompt and answer ``<SEG>.``. Masks are 1 on the class, 0 elsewhere and 255 on ignored
    pixels (unlabelled, or of an ignored class), which the losses treat as background
    (as LISA does) and the metrics leave out.

    Args:
        data_root: Dataset root folder.
        split: Filled into ``img_dir`` / ``seg_dir`` (``'training'``, ``'validation'``
            for ADE20K; ``'train2017'``, ``'val2017'`` for COCO-Stuff).
        classes: ``'ade20k'``, ``'cocostuff'``, ``'mapillary'`` (the names in
            ``{data_root}/config_v2.0.json``), a list of names or a ``.json`` / ``.txt``
            file; name i is label value i (after ``reduce_zero_label``).
        img_dir / seg_dir: Image and label folders under ``data_root``.
        img_suffix / seg_suffix: File endings of images and label maps.
        reduce_zero_label: Label 0 means "unlabelled" (255) and v means class v - 1.
        ignore_classes_containing: Classes whose name contains this text are ignored
            (255); LISA uses ``'-'`` for COCO-Stuff.
        num_classes_per_sample: Classes (masks) per training sample (LISA: 3).
        answers / short_questions: Training templates (``{class_name}``).
        seed: Seed of the per-sample draws.
        on_error: ``'raise'`` or ``'skip'`` (see :mod:`lisakit.datasets.bad_samples`).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    def __init__(
        self,
        data_root: str,
        split: str = 'training',
        classes: Union[str, Sequence[str]] = 'ade20k',
        img_dir: str = 'images/{split}',
        seg_dir: str = 'annotations/{split}',
        img_suffix: str = '.jpg',
        seg_suffix: str = '.png',
        reduce_zero_label: bool = True,
        ignore_classes_containing: Optional[str] = None,
        num_classes_per_sample: int = 1,
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        seed: int = 0,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        init_short_queries(self, num_classes_per_sample, answers, short_questions)
        self._init_on_error(on_error)
        if classes == MAPILLARY:  # the class file ships with the dataset
            classes = os.path.join(data_root, MAPILLARY_CONFIG)
        self.class_names = load_class_names(classes)
        self.split, self.seed = split, seed
        self.img_dir, self.seg_dir = img_dir.format(split=split), seg_dir.format(split=split)
        self.img_suffix, self.seg_suffix = img_suffix, seg_suffix
        self.reduce_zero_label = reduce_zero_label
        self.ignored_ids = np.array(
            [
                i
                for i, name in enumerate(self.class_names)
                if ignore_classes_containing and ignore_classes_containing in name
            ],
            dtype=np.int64,
        )
        self._lookup_8bit: Optional[np.ndarray] = None
        metainfo = {'classes': self.class_names, **(kwargs.pop('metainfo', None) or {})}
        super().__init__(data_root=data_root, ann_file='', metainfo=metainfo, **kwargs)

    def _folder(self, sub: str) -> str:
        folder = os.path.join(self.data_root, sub)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f'Folder {folder!r} not found; check data_root, split ({self.split!r}), '
                'img_dir and seg_dir.'
            )
        return folder

    def _lookup(self, size: int) -> np.ndarray:
        """(size,) int32: raw label value -> class index, ``IGNORE_INDEX``, or
        ``NOT_A_CLASS``."""
        raw = np.arange(size, dtype=np.int64)
        label = raw - 1 if self.reduce_zero_label else raw.copy()
        if self.reduce_zero_label:
            label[(raw == ZERO_LABEL) | (raw == IGNORE_INDEX)] = IGNORE_INDEX
        label[np.isin(label, self.ignored_ids)] = IGNORE_INDEX
        label[(label != IGNORE_INDEX) & (label >= len(self.class_names))] = NOT_A_CLASS
        return label.astype(np.int32)

    def read_label(self, seg_path: str) -> np.ndarray:
        """The label map as (H, W) int32 class indices, ``IGNORE_INDEX`` for ignored
        pixels, after ``reduce_zero_label`` and ``ignore_classes_containing``.

        Raises:
            FileNotFoundError: If the file is missing.
            ValueError: If it is unreadable, not single-channel integer, or holds
                values outside the class list.
        """
        if not os.path.isfile(seg_path):
            raise FileNotFoundError(f'{seg_path}: label map not found.')
        try:
            with Image.open(seg_path) as im:
                mode, raw = im.mode, np.array(im)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f'{seg_path}: label map cannot be decoded ({err}).') from err
        if raw.ndim != 2 or raw.dtype.kind not in INTEGER_KINDS or (raw.size and raw.min() < 0):
            raise ValueError(
                f'{seg_path}: label map has mode {mode} ({raw.dtype}, shape {raw.shape}); '
                'expected a single-channel PNG holding one class index (>= 0) per pixel.'
            )
        size = max(int(raw.max(initial=0)) + 1, IGNORE_INDEX + 1)
        if size == LOOKUP_SIZE_8BIT:
            if self._lookup_8bit is None:
                self._lookup_8bit = self._lookup(LOOKUP_SIZE_8BIT)
            label = self._lookup_8bit[raw]  # (H, W)
        else:
            label = self._lookup(size)[raw]  # (H, W)
        wrong = label == NOT_A_CLASS
        if wrong.any():
            raise ValueError(
                f'{seg_path}: label values {np.unique(raw[wrong])[:5].tolist()} are outside '
                f'the {len(self.class_names)} classes (reduce_zero_label='
                f'{self.reduce_zero_label}); check classes and reduce_zero_label.'
            )
        return label

    @staticmethod
    def present_classes(label: np.ndarray) -> list[int]:
        """Sorted class ids with at least one pixel."""
        counts = np.bincount(label.ravel())
        return [int(c) for c in np.flatnonzero(counts) if c != IGNORE_INDEX]

    def _pairs(self) -> list[tuple[str, str]]:
        img_root, seg_root = self._folder(self.img_dir), self._folder(self.seg_dir)
        stems = sorted(
            f[: -len(self.img_suffix)] for f in os.listdir(img_root) if f.endswith(self.img_suffix)
        )
        if not stems:
            raise ValueError(f'{img_root}: no *{self.img_suffix} image found.')
        pairs = []
        for stem in stems:
            seg_path = os.path.join(seg_root, stem + self.seg_suffix)
            if not os.path.isfile(seg_path):
                self._bad(FileNotFoundError(f'{seg_path}: label map not found.'), seg_path)
                continue
            pairs.append((os.path.join(img_root, stem + self.img_suffix), seg_path))
        return pairs

    def load_data_list(self) -> list[dict]:
        """One entry per image (training) or per (image, class present) (test mode)."""
        data_list = []
        for image_idx, (img_path, seg_path) in enumerate(self._pairs()):
            entry = dict(img_path=img_path, seg_path=seg_path, image_idx=image_idx)
            if not self.test_mode:
                data_list.append(entry)
                continue
            try:
                present = self.present_classes(self.read_label(seg_path))
            except (ValueError, OSError) as err:
                self._bad(err, seg_path)
                continue
            data_list += [dict(entry, class_ids=[c]) for c in present]
        self._log_skipped(f'image(s) of {self.data_root} {self.split}')
        if not data_list:
            example = f', e.g. {self.skipped[0][1]}' if self.skipped else ''
            raise ValueError(
                f'{os.path.join(self.data_root, self.seg_dir)}: no usable sample in split '
                f'{self.split!r} ({len(self.skipped)} bad label map(s){example}).'
            )
        return data_list

    def _draw_classes(self, info: dict, label: np.ndarray) -> list[int]:
        present = self.present_classes(label)
        if not present:
            raise ValueError(
                f'{info["seg_path"]}: no pixel of any class (all unlabelled or ignored); '
                "LISA redraws such images: set on_error='skip' to do the same."
            )
        rng = sample_rng(self.seed, info['image_idx'])
        num = min(self.num_classes_per_sample, len(present))
        return [int(c) for c in rng.choice(present, size=num, replace=False)]

    def get_data_info(self, idx: int) -> dict:
        """The sample with its conversation (one turn per class in training) and
        ``gt_masks`` (N, H, W) uint8 0/1/255."""
        info = super().get_data_info(idx)
        label = self.read_label(info['seg_path'])
        height, width = image_hw(info['img_path'])
        if label.shape != (height, width):
            raise ValueError(
                f'{info["seg_path"]}: label map is {label.shape[1]}x{label.shape[0]} but its '
                f'image {info["img_path"]} is {width}x{height}.'
            )
        if self.test_mode:
            class_ids = info['class_ids']
            text = val_query(self.class_names[class_ids[0]])
        else:
            class_ids = self._draw_classes(info, label)
            rng = sample_rng(self.seed, info['image_idx'], len(class_ids))
            names = [self.class_names[c] for c in class_ids]
            text = short_turns(names, rng, self.short_questions, self.answers)
        masks = (label[None] == np.array(class_ids)[:, None, None]).astype(np.uint8)  # (N, H, W)
        masks[:, label == IGNORE_INDEX] = IGNORE_INDEX
        info.update(
            text,
            class_ids=class_ids,
            class_names=[self.class_names[c] for c in class_ids],
            gt_masks=masks,
            query_type='short',
            is_sentence=False,
        )
        return info
