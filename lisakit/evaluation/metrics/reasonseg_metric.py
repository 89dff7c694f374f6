"""ReasonSeg metric: LISA's gIoU and cIoU, optionally per query group."""

from __future__ import annotations

from typing import Optional, Sequence

from mmengine.evaluator import BaseMetric

from lisakit.evaluation.functional import intersection_union, summarize_iou
from lisakit.registry import METRICS
from lisakit.utils.constants import IGNORE_INDEX

from .summary import group_metrics, log_metrics, no_seg_metrics, sample_name


def _summarize_masks(masks: Sequence[tuple]) -> dict[str, float]:
    """gIoU / cIoU of (intersection, union, group) mask entries."""
    return summarize_iou([m[0] for m in masks], [m[1] for m in masks])


@METRICS.register_module()
class ReasonSegMetric(BaseMetric):
    """gIoU (mean per-mask IoU) and cIoU (cumulative I / U) over a split.

    Keys are ``gIoU`` and ``cIoU`` (fractions; the paper reports x100). In generate mode
    ``no_seg_answers`` counts answers without any ``<SEG>`` (scored as empty masks). With
    ``group_by`` set to a metainfo key (e.g. ``'query_type'`` or
    ``'is_sentence'``) the metric also reports ``{group}/gIoU`` and ``{group}/cIoU``.

    Args:
        ignore_index: Target value excluded from evaluation.
        group_by: Optional metainfo key to break results down by.
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering across ranks.
        prefix: Optional key prefix (none by default, so keys are ``gIoU``/``cIoU``).
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        group_by: Optional[str] = None,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self.group_by = group_by

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store per-mask (intersection, union, group) of each predicted sample."""
        for sample in data_samples:
            pred, gt = sample['pred_masks'], sample['gt_masks']
            if len(pred) != len(gt):
                raise ValueError(
                    f'Sample {sample_name(sample)}: {len(pred)} predicted masks for '
                    f'{len(gt)} targets.'
                )
            inter, union = intersection_union(pred.cpu(), gt.cpu(), self.ignore_index)
            group = sample.get(self.group_by) if self.group_by else None
            # one entry per sample: mmengine truncates and gathers results per dataset item
            masks = [(int(i), int(u), group) for i, u in zip(inter, union)]
            self.results.append(
                dict(masks=masks, num_generated_seg=sample.get('num_generated_seg'))
            )

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Overall and per-group gIoU / cIoU."""
        masks = [mask for sample in results for mask in sample['masks']]
        metrics = _summarize_masks(masks)
        metrics.update(no_seg_metrics(results))  # generate mode: answers without <SEG>
        if self.group_by:
            metrics.update(group_metrics(masks, lambda m: m[2], _summarize_masks))
        log_metrics(f'ReasonSegMetric over {len(masks)} masks', metrics)
        return metrics
