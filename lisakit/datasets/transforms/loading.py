"""Image loading."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lisakit.registry import TRANSFORMS

#: PIL modes of 16/32-bit grayscale images (16-bit PNG / TIFF); ``convert('RGB')`` would clip
#: them to 255 instead of scaling.
HIGH_BIT_DEPTH_MODES = ('I;16', 'I;16B', 'I;16L', 'I')
UINT16_MAX = 65535
UINT16_TO_UINT8 = 257  # 65535 / 255


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """An EXIF-corrected (H, W, 3) uint8 RGB array of any PIL image (L, P, RGBA, CMYK,
    16-bit grayscale, ...); 16-bit values are scaled to 8 bits."""
    im = ImageOps.exif_transpose(im)
    if im.mode in HIGH_BIT_DEPTH_MODES:
        gray = np.asarray(im, dtype=np.int64).clip(0, UINT16_MAX) // UINT16_TO_UINT8
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    return np.array(im.convert('RGB'))


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Load ``results['img_path']`` as an RGB uint8 (H, W, 3) array, EXIF-corrected.

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted; a
    missing, truncated or undecodable file raises an error naming it.

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
                    results['img'] = to_rgb_array(im)
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(
                    f'Image {path!r} cannot be decoded ({err}); re-export or remove it.'
                ) from err
        results['ori_shape'] = tuple(results['img'].shape[:2])
        return results
