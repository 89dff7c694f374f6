"""Mask annotations given as polygons, COCO RLE or mask PNG files.

A mask annotation is a dict with exactly one of these keys:

- ``polygons``: a list of polygons (the parts of one object, united), each a flat
  ``[x1, y1, x2, y2, ...]`` list (COCO) or a list of ``[x, y]`` points (labelme), in
  pixel coordinates of the image as displayed (after EXIF orientation);
- ``rle``: COCO run-length encoding ``{"size": [h, w], "counts": str or list}``;
- ``png``: a single-channel PNG at the image size: 0 = background,
  ``png_ignore_value`` (if set) = ignore (255), any other value = object.

:func:`parse_mask_ann` checks the structure without the image (at dataset load; an
RLE's runs are checked against its own ``size`` there); :class:`LoadMaskAnnotations`
rasterizes at the loaded image's size. Polygons and RLE are checked and decoded by
:mod:`lisakit.datasets.coco_masks`, shared with the refCOCO reader.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from lisakit.registry import TRANSFORMS
from lisakit.utils.constants import IGNORE_INDEX

from ..coco_masks import check_rle, polygon_coords, segmentation_to_mask

MASK_KINDS = ('polygons', 'rle', 'png')
#: The all-zero mask of a no-target query in evaluation (made by datasets, not users).
EMPTY_MASK_ANN = dict(empty=True)
#: Polygons of a mask are numbered from 1 in messages, like turns and masks.
FIRST_POLYGON_NUMBER = 1
#: Polygon points may lie this far (pixels) outside the image border.
OUTSIDE_TOLERANCE_PX = 1.0
#: PIL modes read as one label channel.
SINGLE_CHANNEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16B', 'I;16L')


def parse_mask_ann(ann, k: int, resolve: Callable[[str], str]) -> dict:
    """Check one mask annotation's structure and normalize it.

    Args:
        ann: The annotation (see the module docstring).
        k: Its 1-based position, named in errors.
        resolve: Maps a PNG path from the file to a path on disk.

    Returns:
        ``{'polygons': [[x1, y1, ...], ...]}``, ``{'rle': {...}}`` or ``{'png': path}``.

    Raises:
        ValueError: Naming mask ``k`` and what is wrong (missing PNG files included).
    """
    kinds = [key for key in MASK_KINDS if isinstance(ann, dict) and key in ann]
    if len(kinds) != 1:
        raise ValueError(f'mask {k} must be an object with exactly one of {MASK_KINDS}')
    kind, value = kinds[0], ann[kinds[0]]
    if kind == 'polygons':
        if not isinstance(value, list) or not value:
            raise ValueError(f'mask {k}: "polygons" must be a non-empty list of polygons')
        try:
            numbered = enumerate(value, start=FIRST_POLYGON_NUMBER)
            return dict(polygons=[polygon_coords(p, f'polygon {i}') for i, p in numbered])
        except ValueError as err:
            raise ValueError(f'mask {k}: {err}') from err
    if kind == 'rle':
        try:
            check_rle(value, 'RLE')  # structure and runs; the image size is checked on read
        except ValueError as err:
            raise ValueError(f'mask {k}: {err}') from err
        return dict(rle=dict(size=[int(s) for s in value['size']], counts=value['counts']))
    if not isinstance(value, str):
        raise ValueError(f'mask {k}: "png" must be a file path')
    path = resolve(value)
    if not os.path.isfile(path):
        raise ValueError(f'mask {k}: mask PNG {path!r} not found')
    return dict(png=path)


def _from_png(
    path: str, height: int, width: int, k: int, ignore_value: Optional[int]
) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode not in SINGLE_CHANNEL_MODES:
                raise ValueError(
                    f'mask {k}: {path} has mode {im.mode}; save masks as single-channel '
                    '(grayscale or palette) PNGs'
                )
            label = np.array(im)
    except OSError as err:
        raise ValueError(f'mask {k}: {path} cannot be decoded ({err})') from err
    if label.shape != (height, width):
        raise ValueError(
            f'mask {k}: {path} is {label.shape[1]}x{label.shape[0]}, the image is {width}x{height}'
        )
    mask = (label != 0).astype(np.uint8)
    if ignore_value is not None:
        mask[label == ignore_value] = IGNORE_INDEX
    return mask


def decode_mask_ann(
    ann: dict, image_size: Sequence[int], k: int = 1, png_ignore_value: Optional[int] = None
) -> np.ndarray:
    """Rasterize a parsed mask annotation (see :func:`parse_mask_ann`).

    Args:
        ann: ``{'polygons': ...}``, ``{'rle': ...}``, ``{'png': path}`` or
            :data:`EMPTY_MASK_ANN` (all zeros: a no-target query in evaluation).
        image_size: ``(height, width)`` of the image.
        k: Position of the mask, named in errors.
        png_ignore_value: PNG value mapped to 255 (ignore); None keeps none.

    Returns:
        (H, W) uint8 of 0 / 1 / 255.
    """
    height, width = int(image_size[0]), int(image_size[1])
    if ann.get('empty'):
        return np.zeros((height, width), np.uint8)  # (H, W)
    if 'png' in ann:
        return _from_png(ann['png'], height, width, k, png_ignore_value)
    segmentation = ann['polygons'] if 'polygons' in ann else ann['rle']
    try:
        return segmentation_to_mask(
            segmentation, height, width, FIRST_POLYGON_NUMBER, OUTSIDE_TOLERANCE_PX
        )  # (H, W) uint8 0/1
    except ValueError as err:
        raise ValueError(f'mask {k}: {err}') from err


@TRANSFORMS.register_module()
class LoadMaskAnnotations:
    """Rasterize ``results['mask_anns']`` at the loaded image's size into ``gt_masks``
    (N, H, W) uint8; N = 0 (an empty array) for text-only samples. Run after
    ``LoadImageFromFile``.

    Errors name ``results['ann_location']`` (e.g. ``train.jsonl:12``) and the mask.

    Args:
        png_ignore_value: Value of mask PNGs mapped to 255 (ignore); None: none.
        allow_empty: Accept masks without any object pixel (else ``ValueError``).
    """

    def __init__(self, png_ignore_value: Optional[int] = None, allow_empty: bool = False) -> None:
        self.png_ignore_value = png_ignore_value
        self.allow_empty = allow_empty

    def __call__(self, results: dict) -> dict:
        height, width = results['ori_shape']
        where = results.get('ann_location') or results.get('img_path')
        masks = []
        for k, ann in enumerate(results.get('mask_anns') or [], start=1):
            try:
                mask = decode_mask_ann(ann, (height, width), k, self.png_ignore_value)
            except ValueError as err:
                raise ValueError(f'{where}: {err}.') from err
            if not (self.allow_empty or ann.get('empty')) and not (mask == 1).any():
                raise ValueError(
                    f'{where}: mask {k} is empty (no object pixel); fix or remove it, or '
                    'set LoadMaskAnnotations(allow_empty=True).'
                )
            masks.append(mask)
        results['gt_masks'] = (
            np.stack(masks) if masks else np.zeros((0, height, width), dtype=np.uint8)
        )
        return results
