"""Object and part segmentation from COCO-format instances (PACO-LVIS, PASCAL-Part), as
LISA trains on them (``sem_seg_dataset.py``).

Categories are named ``"object:part"`` (PASCAL-Part, PACO-LVIS parts) or ``"object"``
(PACO-LVIS objects), with LVIS's ``_(...)`` sense suffix removed. A part is asked as
``"object part"`` or ``"the part of the object"`` (probability 0.5 each), an object by
its name; the mask is the one instance's segmentation. Layouts (LISA's ``--dataset_dir``):
``vlpart/paco/annotations/paco_lvis_v1_train.json`` with images under ``coco/``, and
``vlpart/pascal_part/train.json`` with images under
``vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/``.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset

from lisakit.registry import DATASETS

from .bad_samples import SkipBadSamplesMixin
from .class_queries import init_short_queries, short_turns, val_query
from .coco_masks import check_segmentation, segmentation_to_mask
from .draws import sample_rng
from .image_info import image_hw
from .refcoco import read_coco_json
from .templates import ANSWER_LIST, SHORT_QUESTION_LIST

#: Separator of object and part in a category name, and LVIS's sense suffix.
PART_SEPARATOR = ':'
SENSE_SUFFIX = '_('
#: Probability of asking a part as "object part" (else "the part of the object").
OBJECT_PART_ORDER_P = 0.5


def category_name(raw: str) -> Union[str, tuple[str, str]]:
    """LISA's reading of a category name: ``'dog:leg_(left)'`` -> ``('dog', 'leg')``,
    ``'trash_can_(bin)'`` -> ``'trash_can'``.

    Raises:
        ValueError: If the name has more than one ``':'``.
    """
    parts = [p.split(SENSE_SUFFIX)[0] for p in raw.strip().split(PART_SEPARATOR)]
    if len(parts) > 2:
        raise ValueError(f'category name {raw!r} has more than one {PART_SEPARATOR!r}')
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def render_name(name: Union[str, tuple[str, str]], rng: Optional[np.random.Generator]) -> str:
    """The phrase asked: an object's name, or a part as ``"object part"`` /
    ``"the part of the object"`` (drawn with ``rng``; ``"object part"`` without one)."""
    if isinstance(name, str):
        return name
    obj, part = name
    if rng is None or rng.random() < OBJECT_PART_ORDER_P:
        return f'{obj} {part}'
    return f'the {part} of the {obj}'


@DATASETS.register_module()
class PartSegDataset(SkipBadSamplesMixin, BaseDataset):
    """Instances of a COCO-format part dataset, asked about by (part) name.

    Training: one sample per image with at least one annotation; up to
    ``num_classes_per_sample`` of its instances are drawn without replacement (seeded),
    each asked in its own turn through a short-question template, with its own mask.
    Evaluation (``test_mode``): one sample per instance with LISA's prompt (the part as
    ``"object part"``) and answer ``<SEG>.``.

    Args:
        data_root: Dataset root folder (LISA's ``--dataset_dir``).
        ann_file: COCO instances JSON, relative to ``data_root`` or absolute.
        img_dir: Folder the images' ``file_name`` is relative to (under ``data_root``).
        num_classes_per_sample: Instances (masks) per training sample (LISA: 3).
        answers / short_questions: Training templates (``{class_name}``).
        seed: Seed of the per-sample draws.
        on_error: ``'raise'`` or ``'skip'`` (see :mod:`lisakit.datasets.bad_samples`).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    def __init__(
        self,
        data_root: str,
        ann_file: str = 'vlpart/paco/annotations/paco_lvis_v1_train.json',
        img_dir: str = 'coco',
        num_classes_per_sample: int = 1,
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        seed: int = 0,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        init_short_queries(self, num_classes_per_sample, answers, short_questions)
        self._init_on_error(on_error)
        self.img_dir, self.seed = img_dir, seed
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def _instance(self, ann: dict, img: Optional[dict], names: dict) -> dict:
        """``(segmentation, name)`` of a valid annotation; ``ValueError`` naming it."""
        where = f'{self.ann_file}: annotation {ann.get("id")}'
        if img is None or ann.get('category_id') not in names or 'segmentation' not in ann:
            raise ValueError(f'{where}: unknown image / category, or no segmentation.')
        try:
            check_segmentation(ann['segmentation'], int(img['height']), int(img['width']))
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f'{where}: {err}.') from err
        return dict(segmentation=ann['segmentation'], name=names[ann['category_id']])

    def load_data_list(self) -> list[dict]:
        """One entry per image with instances (training) or per instance (test mode)."""
        data = read_coco_json(
            self.ann_file,
            ('images', 'annotations', 'categories'),
            f'{self.ann_file}: annotation file not found.',
        )
        names = {c['id']: category_name(c['name']) for c in data['categories']}
        images = {img['id']: img for img in data['images']}
        by_image: dict = {}
        for ann in data['annotations']:
            try:
                instance = self._instance(ann, images.get(ann.get('image_id')), names)
            except ValueError as err:
                self._bad(err, self.ann_file)
                continue
            by_image.setdefault(ann['image_id'], []).append(instance)
        data_list = []
        for image_idx, image_id in enumerate(sorted(by_image)):
            img = images[image_id]
            entry = dict(
                img_path=os.path.join(self.data_root, self.img_dir, img['file_name']),
                mask_size=(int(img['height']), int(img['width'])),
                image_idx=image_idx,
            )
            instances = by_image[image_id]
            if self.test_mode:
                data_list += [dict(entry, instances=[i]) for i in instances]
            else:
                data_list.append(dict(entry, instances=instances))
        self._log_skipped(f'annotation(s) of {self.ann_file}')
        if not data_list:
            raise ValueError(f'{self.ann_file}: no image with a usable annotation.')
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The sample with its conversation and ``gt_masks`` (N, H, W) uint8 0/1."""
        info = super().get_data_info(idx)
        height, width = info.pop('mask_size')
        actual = image_hw(info['img_path'])
        if actual != (height, width):
            raise ValueError(
                f'{info["img_path"]}: the image is {actual[1]}x{actual[0]} but '
                f'{self.ann_file} says {width}x{height}.'
            )
        instances = info.pop('instances')
        if self.test_mode:
            phrases = [render_name(instances[0]['name'], None)]
            text = val_query(phrases[0])
        else:
            rng = sample_rng(self.seed, info['image_idx'])
            num = min(self.num_classes_per_sample, len(instances))
            instances = [instances[i] for i in rng.choice(len(instances), num, replace=False)]
            phrases = [render_name(i['name'], rng) for i in instances]
            text = short_turns(phrases, rng, self.short_questions, self.answers)
        masks = [segmentation_to_mask(i['segmentation'], height, width) for i in instances]
        info.update(
            text,
            class_names=phrases,
            gt_masks=np.stack(masks),  # (N, H, W)
            query_type='short',
            is_sentence=False,
        )
        return info
