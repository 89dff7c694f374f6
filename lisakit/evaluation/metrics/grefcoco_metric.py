"""gRefCOCO metric: merged-mask gIoU / cIoU with no-target scoring, N-acc, T-acc and
(per-object mode) object-matched IoU. Formulas: :mod:`lisakit.evaluation.functional.grefcoco`."""

from __future__ import annotations

from typing import Optional, Sequence

from mmengine.evaluator import BaseMetric

from lisakit.evaluation.functional.giou_ciou import CIOU_EPS, GIOU_COUNT_EPS
from lisakit.evaluation.functional.grefcoco import merged_sample_score, object_matched_iou
from lisakit.registry import METRICS
from lisakit.utils.constants import IGNORE_INDEX

from .summary import group_metrics, log_metrics, no_seg_metrics, sample_name

#: A sample with at least this many targets counts as multi-target (``multi/...`` keys).
MULTI_TARGET_MIN = 2


def summarize_samples(scores: Sequence[dict]) -> dict[str, float]:
    """gIoU, cIoU, and N-acc / T-acc (when such samples exist) of per-sample scores."""
    out = {
        'gIoU': sum(s['iou'] for s in scores) / (len(scores) + GIOU_COUNT_EPS),
        'cIoU': sum(s['I'] for s in scores) / (sum(s['U'] for s in scores) + CIOU_EPS),
    }
    no_target = [s for s in scores if s['no_target']]
    target = [s for s in scores if not s['no_target']]
    if no_target:  # TP / (TP + FN)
        out['N-acc'] = sum(s['rejected'] for s in no_target) / len(no_target)
    if target:  # TN / (TN + FP)
        out['T-acc'] = sum(not s['rejected'] for s in target) / len(target)
    return {k: float(v) for k, v in out.items()}


@METRICS.register_module()
class GRefCOCOMetric(BaseMetric):
    """Generalized referring segmentation metric (gRefCOCO; GRES / GSVA definitions).

    Keys: ``gIoU``, ``cIoU`` (merged masks, a no-target sample scores 1 when rejected
    else 0), ``N-acc`` and ``T-acc`` (when the split has no-target / target samples),
    ``multi/gIoU`` and ``multi/cIoU`` over samples with >= 2 targets, ``no_seg_answers``
    in generate mode, ``object_mIoU`` with ``object_iou=True`` and ``{group}/...`` with
    ``group_by``.

    A sample is no-target when its metainfo says ``no_target=True``; without the key,
    when it has no target mask or only all-zero ones. It is rejected when the data
    sample holds ``pred_rejected`` (a model with a rejection token), else when its
    predicted masks have no foreground pixel (an answer without ``<SEG>`` gives none).
    On single-target data without rejections gIoU / cIoU equal ``ReasonSegMetric``'s.

    Args:
        object_iou: Also report the object-matched IoU (per-object mode).
        ignore_index: Target value excluded from evaluation.
        group_by: Optional metainfo key to break results down by.
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering across ranks.
        prefix: Optional key prefix.
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        object_iou: bool = False,
        ignore_index: int = IGNORE_INDEX,
        group_by: Optional[str] = None,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.object_iou, self.ignore_index, self.group_by = object_iou, ignore_index, group_by

    @staticmethod
    def _no_target(sample: dict) -> bool:
        if sample.get('no_target') is not None:
            return bool(sample['no_target'])
        gt = sample['gt_masks']
        return len(gt) == 0 or not bool((gt == 1).any())

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store one score dict per sample."""
        for sample in data_samples:
            pred, gt = sample['pred_masks'].cpu(), sample['gt_masks'].cpu()
            if len(pred) and pred.shape[-2:] != gt.shape[-2:]:
                raise ValueError(
                    f'Sample {sample_name(sample)}: predicted '
                    f'masks {tuple(pred.shape)} and targets {tuple(gt.shape)} differ in size.'
                )
            no_target = self._no_target(sample)
            rejected = sample.get('pred_rejected')
            score = merged_sample_score(
                pred, gt, no_target, None if rejected is None else bool(rejected), self.ignore_index
            )
            score['num_targets'] = 0 if no_target else len(gt)
            score['num_targets'] = sample.get('num_targets', score['num_targets'])
            score['num_generated_seg'] = sample.get('num_generated_seg')
            score['group'] = sample.get(self.group_by) if self.group_by else None
            if self.object_iou:  # a no-target sample: 1 when rejected, as above
                score['object_iou'] = (
                    score['iou']
                    if no_target
                    else object_matched_iou(
                        pred, gt, sample.get('num_generated_seg'), self.ignore_index
                    )
                )
            self.results.append(score)

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Overall, multi-target and per-group scores."""
        metrics = summarize_samples(results)
        multi = [r for r in results if r['num_targets'] >= MULTI_TARGET_MIN]
        if multi:
            for k in ('gIoU', 'cIoU'):
                metrics[f'multi/{k}'] = summarize_samples(multi)[k]
        metrics.update(no_seg_metrics(results))
        if self.object_iou:
            metrics['object_mIoU'] = float(
                sum(r['object_iou'] for r in results) / max(len(results), 1)
            )
        if self.group_by:
            metrics.update(group_metrics(results, lambda r: r['group'], summarize_samples))
        log_metrics(f'GRefCOCOMetric over {len(results)} samples', metrics)
        return metrics
