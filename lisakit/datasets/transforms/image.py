"""SAM's image branch (the VLM's image preprocessing is its processor's, in the model)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

from lisakit.registry import TRANSFORMS
from lisakit.utils.constants import SAM_PIXEL_MEAN, SAM_PIXEL_STD


@TRANSFORMS.register_module()
class SAMPreprocess:
    """SAM's input: resize the longest side to ``img_size``, normalize, zero-pad.

    Adds ``sam_image`` (3, S, S) float32 and ``sam_resize`` (h, w), the size of the
    resized image inside the padded square (needed to crop predictions).

    Args:
        img_size: Side S of SAM's input (1024 for official SAM).
        mean: RGB mean on the 0-255 scale.
        std: RGB std on the 0-255 scale.
    """

    def __init__(
        self,
        img_size: int = 1024,
        mean: Sequence[float] = SAM_PIXEL_MEAN,
        std: Sequence[float] = SAM_PIXEL_STD,
    ) -> None:
        self.img_size = img_size
        self.resizer = ResizeLongestSide(img_size)
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, results: dict) -> dict:
        resized = self.resizer.apply_image(results['img'])  # (h, w, 3) uint8
        x = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).float()
        x = (x - self.mean) / self.std  # (3, h, w)
        h, w = x.shape[-2:]
        results['sam_image'] = F.pad(x, (0, self.img_size - w, 0, self.img_size - h))
        results['sam_resize'] = (h, w)
        return results
