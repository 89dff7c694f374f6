"""COCO-format segmentations (polygons, RLE) to binary masks, validated first.

The one place lisakit checks and decodes polygons and run-length encodings; the
refCOCO reader and users' JSON lines (:mod:`lisakit.datasets.transforms.masks`) both
use it and prefix its messages with their own location (annotation id, ``file:line``).

A COCO ``segmentation`` is a list of polygons ``[[x0, y0, x1, y1, ...], ...]`` (one per
part of a multi-part object; a polygon may also be a list of ``[x, y]`` points), a
run-length encoding ``{"size": [h, w], "counts": ...}`` (``counts`` a list of run
lengths, or COCO's compressed string) or a list mixing both.
:func:`segmentation_to_mask` decodes any of them with pycocotools into one (H, W) 0/1
mask: the union of the parts. (LISA sums the parts, which gives 2 where parts
overlap; lisakit keeps masks binary.) :func:`check_segmentation` raises ``ValueError``
with the reason for malformed input, so datasets can report it before decoding.
pycocotools decodes an RLE whose runs do not add up to ``h * w`` into garbage
instead of failing, so the runs are always checked first.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils

#: A polygon needs at least three (x, y) points.
MIN_POLYGON_POINTS = 3
COORDS_PER_POINT = 2
#: An RLE ``size`` is [height, width].
RLE_SIZE_LEN = 2
INT_TYPES = (int, np.integer)
#: COCO's compressed RLE string: 5 data bits per character, offset 48, continuation
#: bit 0x20, sign bit 0x10 (pycocotools ``rleFrString``).
_RLE_CHAR_OFFSET = 48
_RLE_DATA_BITS = 5
_RLE_DATA_MASK = 0x1F
_RLE_MORE_BIT = 0x20
_RLE_SIGN_BIT = 0x10
_RLE_DELTA_FROM = 2


def compressed_rle_counts(counts: str | bytes) -> list[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``).

    Raises:
        ValueError: If the string is not ASCII or ends in the middle of a number.
    """
    try:
        data = counts.encode('ascii') if isinstance(counts, str) else bytes(counts)
    except UnicodeEncodeError as err:
        raise ValueError(f'compressed RLE counts are not ASCII ({err})') from err
    runs: list[int] = []
    pos = 0
    while pos < len(data):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(data):
                raise ValueError('compressed RLE counts end in the middle of a number')
            char = data[pos] - _RLE_CHAR_OFFSET
            value |= (char & _RLE_DATA_MASK) << shift
            more = bool(char & _RLE_MORE_BIT)
            pos, shift = pos + 1, shift + _RLE_DATA_BITS
            if not more and char & _RLE_SIGN_BIT:
                value |= -1 << shift
        if len(runs) > _RLE_DELTA_FROM:
            value += runs[-_RLE_DELTA_FROM]
        runs.append(value)
    return runs


def polygon_coords(poly: Any, name: str = 'polygon') -> list[float]:
    """Check a polygon's structure and return it as a flat ``[x1, y1, x2, y2, ...]``.

    Args:
        poly: A flat COCO list ``[x1, y1, ...]`` or a list of ``[x, y]`` points.
        name: How errors name it (e.g. ``'polygon 0'``).

    Raises:
        ValueError: If it is not numbers, has an odd count, fewer than
            :data:`MIN_POLYGON_POINTS` points or a non-finite coordinate.
    """
    try:
        coords = np.asarray(poly, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name} is not a list of numbers ({err})') from err
    if coords.ndim == COORDS_PER_POINT and coords.shape[1] == COORDS_PER_POINT:
        coords = coords.reshape(-1)  # (K, 2) points -> (2K,)
    if coords.ndim != 1 or coords.size % COORDS_PER_POINT:
        raise ValueError(
            f'{name} has shape {coords.shape}; expected [x1, y1, x2, y2, ...] (an even '
            'count) or [[x, y], ...]'
        )
    if coords.size < MIN_POLYGON_POINTS * COORDS_PER_POINT:
        raise ValueError(
            f'{name} has {coords.size // COORDS_PER_POINT} point(s); a polygon needs at '
            f'least {MIN_POLYGON_POINTS}'
        )
    if not np.isfinite(coords).all():
        raise ValueError(f'{name} has a NaN or infinite coordinate')
    return coords.tolist()


def check_polygon_bounds(
    coords: Sequence[float], name: str, height: int, width: int, tolerance: Optional[float]
) -> None:
    """Raise ``ValueError`` if a flat polygon lies outside the image.

    Args:
        coords: ``[x1, y1, x2, y2, ...]`` from :func:`polygon_coords`.
        name: How errors name it.
        height: Image height in pixels.
        width: Image width in pixels.
        tolerance: None: only a polygon lying wholly outside is an error (pycocotools
            clips the rest, as COCO's own data needs); a number: any point farther than
            this many pixels outside is an error (users' data, where it means wrong
            coordinates).
    """
    arr = np.asarray(coords, dtype=np.float64)
    xs, ys = arr[0::COORDS_PER_POINT], arr[1::COORDS_PER_POINT]
    if tolerance is None:
        outside = xs.max() < 0 or xs.min() > width or ys.max() < 0 or ys.min() > height
    else:
        low = min(xs.min(), ys.min()) < -tolerance
        outside = low or xs.max() > width + tolerance or ys.max() > height + tolerance
    if outside:
        raise ValueError(
            f'{name} spans x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g}, '
            f'outside the {width}x{height} image; fix the coordinates (pixels of the image '
            'as displayed, after EXIF rotation)'
        )


def _rle_size(rle: Any, name: str) -> tuple[int, int]:
    size = rle.get('size') if isinstance(rle, dict) else None
    valid = isinstance(size, (list, tuple)) and len(size) == RLE_SIZE_LEN
    if not (valid and 'counts' in rle and all(isinstance(s, INT_TYPES) and s >= 0 for s in size)):
        raise ValueError(f'{name} must be {{"size": [height, width], "counts": ...}}')
    return int(size[0]), int(size[1])


def check_rle(
    rle: Any, name: str = 'RLE', height: Optional[int] = None, width: Optional[int] = None
) -> None:
    """Raise ``ValueError`` saying what is wrong with a COCO RLE.

    Checks the structure, that the run lengths are non-negative and add up to the
    pixels of its ``size`` (a truncated or corrupt RLE otherwise decodes into garbage)
    and, given ``height`` and ``width``, that ``size`` is the image's.

    Args:
        rle: ``{"size": [h, w], "counts": list of ints or compressed string}``.
        name: How errors name it.
        height: Image height in pixels, or None to skip the size comparison.
        width: Image width in pixels, or None to skip the size comparison.
    """
    rle_h, rle_w = _rle_size(rle, name)
    if height is not None and width is not None and [rle_h, rle_w] != [height, width]:
        raise ValueError(
            f'{name} size [{rle_h}, {rle_w}] differs from the image size [{height}, {width}]'
        )
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        try:
            runs = compressed_rle_counts(counts)
        except ValueError as err:
            raise ValueError(f'{name}: {err}') from err
    elif isinstance(counts, list) and all(isinstance(c, INT_TYPES) for c in counts):
        runs = [int(c) for c in counts]
    else:
        raise ValueError(f'{name} counts must be a list of ints or a compressed string')
    if any(r < 0 for r in runs):
        raise ValueError(f'{name} has a negative run length; its counts are corrupt')
    if sum(runs) != rle_h * rle_w:
        raise ValueError(
            f'{name} runs add up to {sum(runs)} pixels but its size [{rle_h}, {rle_w}] '
            f'has {rle_h * rle_w}; the counts are truncated or corrupt'
        )


def _parts(segmentation: Any, first_index: int, allow_empty: bool) -> list[tuple[str, Any]]:
    """``(name, part)`` of each part of a segmentation (none for an allowed ``[]``)."""
    if isinstance(segmentation, dict):
        return [('RLE', segmentation)]
    if not isinstance(segmentation, list):
        raise ValueError(
            f'segmentation must be a list of polygons or an RLE dict, got '
            f'{type(segmentation).__name__}'
        )
    if not segmentation and not allow_empty:
        raise ValueError('empty segmentation (no polygon and no RLE)')
    return [
        (f'{"RLE" if isinstance(part, dict) else "polygon"} {i}', part)
        for i, part in enumerate(segmentation, start=first_index)
    ]


def check_segmentation(
    segmentation: Any,
    height: int,
    width: int,
    first_index: int = 0,
    outside_tolerance: Optional[float] = None,
    allow_empty: bool = False,
) -> None:
    """Raise ``ValueError`` saying what is wrong with a COCO segmentation.

    Args:
        segmentation: Polygons, an RLE dict or a list of parts (polygons / RLE dicts).
        height: Image height in pixels.
        width: Image width in pixels.
        first_index: Number of the first part in messages (``'polygon 0'``).
        outside_tolerance: See :func:`check_polygon_bounds`.
        allow_empty: Accept ``[]`` (no part: an empty mask) instead of raising.
    """
    for name, part in _parts(segmentation, first_index, allow_empty):
        if isinstance(part, dict):
            check_rle(part, name, height, width)
        else:
            coords = polygon_coords(part, name)
            check_polygon_bounds(coords, name, height, width, outside_tolerance)


def _to_rle(part: Any, height: int, width: int) -> dict:
    """One checked part (polygon or RLE dict) as a compressed RLE."""
    if not isinstance(part, dict):
        return mask_utils.frPyObjects([polygon_coords(part)], height, width)[0]
    counts = part['counts']
    if isinstance(counts, list):  # uncompressed (iscrowd) RLE
        coded = dict(size=[height, width], counts=[int(c) for c in counts])
        return mask_utils.frPyObjects(coded, height, width)
    return dict(size=[height, width], counts=counts.encode() if isinstance(counts, str) else counts)


def segmentation_to_mask(
    segmentation: Any,
    height: int,
    width: int,
    first_index: int = 0,
    outside_tolerance: Optional[float] = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Decode a COCO segmentation into a binary mask.

    Args:
        segmentation: Polygons, an RLE dict or a list of parts (checked with
            :func:`check_segmentation` first).
        height: Image height in pixels.
        width: Image width in pixels.
        first_index: Number of the first part in messages.
        outside_tolerance: See :func:`check_polygon_bounds`.
        allow_empty: Decode ``[]`` (no part) as an all-zero mask instead of raising.

    Returns:
        (H, W) uint8 mask: 1 inside any part, 0 elsewhere.

    Raises:
        ValueError: If the segmentation is malformed.
    """
    check_segmentation(segmentation, height, width, first_index, outside_tolerance, allow_empty)
    parts = [p for _, p in _parts(segmentation, first_index, allow_empty)]
    if not parts:
        return np.zeros((height, width), np.uint8)  # (H, W)
    rle = mask_utils.merge([_to_rle(p, height, width) for p in parts], intersect=False)
    return np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)  # (H, W)


def order_left_to_right(masks: np.ndarray) -> list[int]:
    """Indices of (K, H, W) masks sorted by leftmost pixel column, then topmost row
    (the per-object order of ``<SEG>``; empty masks last)."""
    keys = []
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        keys.append((0, int(xs.min()), int(ys.min()), k) if len(xs) else (1, 0, 0, k))
    return [k[-1] for k in sorted(keys)]
