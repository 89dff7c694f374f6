"""Base class of promptable mask heads: decoding, post-processing, losses, predictions.

As mmseg's ``BaseDecodeHead``, the head owns its losses (built from ``loss_decode``),
their targets and its predictions: a segmentor hands it the image features of B
samples and one prompt row per ``<SEG>`` and gets back a loss dict (``loss``) or
filled data samples (``predict``). A subclass implements :meth:`forward` (low-res
logits and predicted IoUs) and sets ``input_image_size`` for :meth:`postprocess` (SAM's
upsampling to the original image size; override it for another input layout).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Callable, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import MASK_LOGIT_THRESHOLD
from lisakit.utils.mask_iou import intersection_union, summarize_iou

SampleList = Sequence[ReasonSegDataSample]
#: LISA's mask losses: 2.0 x BCE + 0.5 x Dice (keys ``loss_bce``, ``loss_dice``).
#: Low-resolution mask logits are this many times the side of the embedding grid.
LOW_RES_SCALE = 4
DEFAULT_LOSS_DECODE = (
    dict(type='MaskBCELoss', loss_weight=2.0),
    dict(type='DiceLoss', loss_weight=0.5),
)


def _sample_name(data_sample: ReasonSegDataSample) -> Any:
    return data_sample.metainfo.get('img_path') or data_sample.metainfo.get('sample_idx')


def mask_targets(masks: Sequence[torch.Tensor], data_samples: SampleList) -> list[torch.Tensor]:
    """0/1 float targets (n_i, H_i, W_i) of each sample, checked against its predictions.

    Ignore pixels (255) count as background, as in LISA's training.

    Raises:
        ValueError: A sample without ``gt_masks`` or with a mask count that differs
            from its ``<SEG>`` count.
    """
    targets = []
    for m, ds in zip(masks, data_samples):
        if 'gt_masks' not in ds:
            raise ValueError(
                f'Sample {_sample_name(ds)} has no gt_masks; training needs them, (0, H, W) '
                'for text-only samples: add a mask loader (e.g. LoadMaskAnnotations) to the '
                'pipeline.'
            )
        if len(ds.gt_masks) != len(m):
            raise ValueError(
                f'Sample {_sample_name(ds)}: the answer has {len(m)} <SEG> tokens but there '
                f'are {len(ds.gt_masks)} target masks; write exactly one <SEG> per mask.'
            )
        targets.append((ds.gt_masks == 1).to(m.dtype))
    return targets


class BaseMaskHead(BaseModule, metaclass=ABCMeta):
    """A head that decodes one mask per prompt row and owns the mask losses.

    Args:
        loss_decode: One loss config or a list of them; each loss's ``loss_name``
            is its key in the loss dict (``MaskBCELoss`` -> ``loss_bce``,
            ``DiceLoss`` -> ``loss_dice``). Default: LISA's 2.0 BCE + 0.5 Dice.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        loss_decode: Union[dict, Sequence[dict]] = DEFAULT_LOSS_DECODE,
        init_cfg: Union[dict, None] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        cfgs = [loss_decode] if isinstance(loss_decode, dict) else list(loss_decode)
        self.loss_decode = nn.ModuleList(MODELS.build(cfg) for cfg in cfgs)
        names = [loss.loss_name for loss in self.loss_decode]
        if len(set(names)) != len(names) or not all(n.startswith('loss_') for n in names):
            raise ValueError(
                f'model.head.loss_decode names its losses {names}; each loss_name must be '
                "unique and start with 'loss_' (e.g. loss_name='loss_bce')."
            )

    @abstractmethod
    def forward(
        self, image_feats: Any, prompts: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Low-res logits B x (n_i, h', w') and predicted IoUs B x (n_i,) of B samples."""

    @staticmethod
    def decode_each(
        embeddings: torch.Tensor,
        prompts: Sequence[torch.Tensor],
        decode: Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Decode sample by sample; a sample without prompt rows gets empty outputs.

        Args:
            embeddings: (B, C, h, w) image embeddings (their dtype/device/size shape the
                empty outputs).
            prompts: B tensors (n_i, C), one row per ``<SEG>``.
            decode: ``decode(i, prompt)`` -> (n_i, 4h, 4w) logits and (n_i,) IoUs of
                sample ``i`` with ``n_i > 0`` rows.

        Returns:
            B tensors (n_i, 4h, 4w) of low-res logits and B tensors (n_i,) of IoUs.
        """
        masks, ious = [], []
        for i, prompt in enumerate(prompts):
            if prompt.shape[0] == 0:
                size = LOW_RES_SCALE * embeddings.shape[-1]
                mask, iou = embeddings.new_zeros((0, size, size)), embeddings.new_zeros((0,))
            else:
                mask, iou = decode(i, prompt)
            masks.append(mask)
            ious.append(iou)
        return masks, ious

    def postprocess(
        self, masks: torch.Tensor, input_size: Sequence[int], original_size: Sequence[int]
    ) -> torch.Tensor:
        """Upsample low-res logits to the original image size (SAM's ``postprocess_masks``; SAM 2
        saw the same padded input).

                Args:
                    masks: (n, h', w') low-resolution logits.
                    input_size: (h, w) of the resized image before padding.
                    original_size: (H, W) of the original image.

                Returns:
                    (n, H, W) float32 logits.
        """
        size = self.input_image_size
        x = F.interpolate(
            masks[:, None].float(), (size, size), mode='bilinear', align_corners=False
        )
        x = x[..., : int(input_size[0]), : int(input_size[1])]
        x = F.interpolate(
            x, tuple(int(s) for s in original_size), mode='bilinear', align_corners=False
        )
        return x[:, 0]

    def predict_masks(
        self, image_feats: Any, prompts: Sequence[torch.Tensor], data_samples: SampleList
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Mask logits at the original size B x (n_i, H_i, W_i) and IoUs B x (n_i,).

        Args:
            image_feats: The image encoder's output for the B samples.
            prompts: B tensors (n_i, C), one row per ``<SEG>``.
            data_samples: B samples whose metainfo holds ``sam_resize`` (the resized
                size before padding) and ``ori_shape``.
        """
        low_res, ious = self(image_feats, prompts)
        masks = [
            self.postprocess(m, ds.metainfo['sam_resize'], ds.metainfo['ori_shape'])
            for m, ds in zip(low_res, data_samples)
        ]
        return masks, ious

    def loss_by_masks(
        self, masks: Sequence[torch.Tensor], data_samples: SampleList
    ) -> dict[str, torch.Tensor]:
        """Every ``loss_decode`` loss over the masks (n_i, H_i, W_i) of the samples."""
        targets = mask_targets(masks, data_samples)
        return {loss.loss_name: loss(masks, targets) for loss in self.loss_decode}

    @staticmethod
    @torch.no_grad()
    def iou_stats(masks: Sequence[torch.Tensor], data_samples: SampleList) -> dict[str, float]:
        """The batch's gIoU and cIoU (LISA's formulas) of logits > 0 against ``gt_masks``."""
        inter, union = [], []
        for m, ds in zip(masks, data_samples):
            i, u = intersection_union(m > MASK_LOGIT_THRESHOLD, ds.gt_masks)
            inter += i.tolist()
            union += u.tolist()
        return summarize_iou(inter, union)

    def loss(
        self, image_feats: Any, prompts: Sequence[torch.Tensor], data_samples: SampleList
    ) -> dict[str, torch.Tensor]:
        """Mask losses and, when the batch has masks, its training gIoU / cIoU.

        Samples without prompts (text-only) have no masks; a batch of only such samples
        gets every loss 0 and no gIoU / cIoU.
        """
        masks, _ = self.predict_masks(image_feats, prompts, data_samples)
        losses = self.loss_by_masks(masks, data_samples)
        if any(len(m) for m in masks):
            device = next(iter(losses.values())).device
            stats = self.iou_stats(masks, data_samples)
            losses.update({k: torch.tensor(v, device=device) for k, v in stats.items()})
        return losses

    def predict(
        self, image_feats: Any, prompts: Sequence[torch.Tensor], data_samples: SampleList
    ) -> SampleList:
        """Fill ``pred_masks`` (n_i, H, W) bool and ``pred_iou_scores`` (n_i,) on CPU and,
        where targets exist, the per-sample mask ``losses`` (floats); moves ``gt_masks``
        to CPU for the metric."""
        masks, ious = self.predict_masks(image_feats, prompts, data_samples)
        for m, iou, ds in zip(masks, ious, data_samples):
            ds.pred_masks = (m > MASK_LOGIT_THRESHOLD).cpu()
            ds.pred_iou_scores = iou.detach().float().cpu()
            if 'gt_masks' in ds:
                ds.losses = {k: float(v) for k, v in self.loss_by_masks([m], [ds]).items()}
                ds.gt_masks = ds.gt_masks.cpu()
        return data_samples
