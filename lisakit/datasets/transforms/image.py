"""The two image branches: SAM (full image) and CLIP (the VLM's processor)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide
from transformers import CLIPImageProcessor, CLIPImageProcessorPil

from lisakit.registry import TRANSFORMS
from lisakit.utils.constants import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, SAM_PIXEL_MEAN, SAM_PIXEL_STD


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


#: CLIP image processor classes by backend (Pillow: transformers 4.31's arithmetic).
CLIP_BACKENDS = {'pil': CLIPImageProcessorPil, 'torchvision': CLIPImageProcessor}


@TRANSFORMS.register_module()
class CLIPPreprocess:
    """The VLM's CLIP image processor (transformers' ``CLIPImageProcessor``).

    Either loads the processor of a local model folder (``pretrained``) or builds
    one from sizes: resize the shortest side to ``size`` (bicubic), center-crop
    ``size`` x ``size``, rescale to 0-1 and normalize. Adds ``clip_image`` (3, s, s).

    The default ``backend='pil'`` resizes the uint8 image with Pillow, as
    transformers 4.31 (LISA's) does: its pixels equal LISA's to float32 precision
    (tested against a recorded fixture). transformers 5's default torchvision backend
    resizes differently and moves about 0.1% of the values by one 8-bit level (up to
    0.03 after normalization).

    Args:
        size: Shortest side and crop size (224 for CLIP ViT-L/14, 336 for LLaVA-1.5).
        pretrained: Local folder holding ``preprocessor_config.json``; overrides sizes.
        mean: RGB mean (0-1 scale).
        std: RGB std (0-1 scale).
        backend: ``'pil'`` (LISA's values) or ``'torchvision'`` (transformers 5's default).
    """

    def __init__(
        self,
        size: int = 224,
        pretrained: Optional[str] = None,
        mean: Sequence[float] = CLIP_PIXEL_MEAN,
        std: Sequence[float] = CLIP_PIXEL_STD,
        backend: str = 'pil',
    ) -> None:
        if backend not in CLIP_BACKENDS:
            raise ValueError(
                f'CLIPPreprocess: backend={backend!r}; expected one of {sorted(CLIP_BACKENDS)}.'
            )
        processor_cls = CLIP_BACKENDS[backend]
        if pretrained is not None:
            self.processor = processor_cls.from_pretrained(pretrained, local_files_only=True)
        else:
            self.processor = processor_cls(
                size={'shortest_edge': size},
                crop_size={'height': size, 'width': size},
                image_mean=list(mean),
                image_std=list(std),
            )

    def __call__(self, results: dict) -> dict:
        out = self.processor(images=results['img'], return_tensors='pt')
        results['clip_image'] = out['pixel_values'][0].float()  # (3, s, s)
        return results
