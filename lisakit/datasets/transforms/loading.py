"""Image loading."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lisakit.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Load ``results['img_path']`` as an RGB uint8 (H, W, 3) array, EXIF-corrected.

    Adds ``img`` and ``ori_shape`` (H, W). A sample that already carries ``img``
    (e.g. a generated one) passes through unchanged.
    """

    def __call__(self, results: dict) -> dict:
        if results.get('img') is None:
            path = results.get('img_path')
            if not path or not os.path.isfile(path):
                raise FileNotFoundError(
                    f'Image {path!r} not found; check data_root and the annotation that names it.'
                )
            try:
                with Image.open(path) as im:
                    results['img'] = np.array(ImageOps.exif_transpose(im).convert('RGB'))
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(
                    f'Image {path!r} cannot be decoded ({err}); re-export or remove it.'
                ) from err
        results['ori_shape'] = tuple(results['img'].shape[:2])
        return results
