"""Generated ReasonSeg-format folders for benchmarks and smoke tests.

:func:`write_reasonseg_folder` writes noisy JPEGs with one random polygon target each and
the same-stem LISA JSON (``text``, ``is_sentence``, ``shapes``), the format that
:class:`lisakit.datasets.ReasonSegDataset` reads.
"""

from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np
from PIL import Image

#: (H, W) of generated images: the longest side is SAM's 1024.
DEFAULT_IMAGE_SIZE = (768, 1024)
JPEG_QUALITY = 90
DEFAULT_QUERY = 'the object that keeps food cold'
POLYGON_VERTICES = 8
POLYGON_RADIUS_FRACTION = 0.2  # of the shorter image side


def write_reasonseg_folder(
    root: str,
    split: str = 'val',
    num: int = 8,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    query: str = DEFAULT_QUERY,
    seed: int = 0,
) -> str:
    """Write ``num`` random images + LISA JSON annotations under ``root/split``.

    Args:
        root: Dataset root (``data_root`` of ``ReasonSegDataset``).
        split: Split folder name.
        num: Number of image / JSON pairs.
        image_size: (height, width) of the images.
        query: The query text stored in every annotation.
        seed: Seed of the pixels and polygons.

    Returns:
        The split folder.
    """
    rng = np.random.default_rng(seed)
    folder = osp.join(root, split)
    os.makedirs(folder, exist_ok=True)
    height, width = image_size
    radius = POLYGON_RADIUS_FRACTION * min(height, width)
    for i in range(num):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(osp.join(folder, f'img_{i}.jpg'), quality=JPEG_QUALITY)
        center = rng.uniform(radius, [width - radius, height - radius])  # (x, y)
        angles = np.sort(rng.uniform(0, 2 * np.pi, POLYGON_VERTICES))
        points = center + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
        ann = dict(
            text=[query],
            is_sentence=len(query.split()) > 1,
            shapes=[dict(label='target', points=points.tolist())],
        )
        with open(osp.join(folder, f'img_{i}.json'), 'w', encoding='utf-8') as f:
            json.dump(ann, f)
    return folder
