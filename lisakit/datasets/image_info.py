"""Image facts read from the file header only (cheap enough for every sample)."""

from __future__ import annotations

import os

from PIL import Image, UnidentifiedImageError

#: EXIF orientation tag and the orientations that swap width and height.
EXIF_ORIENTATION = 0x0112
EXIF_TRANSPOSED = (5, 6, 7, 8)


def image_hw(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image as ``LoadImageFromFile`` loads it (EXIF rotation
    applied), from the file header.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a readable image.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Image {path!r} not found.')
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.getexif().get(EXIF_ORIENTATION) in EXIF_TRANSPOSED:
                width, height = height, width
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f'Image {path!r} cannot be read ({err}); re-export or remove it.') from err
    return height, width
