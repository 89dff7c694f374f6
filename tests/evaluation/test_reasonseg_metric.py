"""Unit tests of lisakit.evaluation.ReasonSegMetric with hand-computed gIoU / cIoU."""

import pytest
import torch

from lisakit.evaluation import ReasonSegMetric
from lisakit.registry import METRICS


def b(x):
    return torch.tensor(x, dtype=torch.bool)


def u8(x):
    return torch.tensor(x, dtype=torch.uint8)


# Sample A: two 2x3 masks.
#   mask 0: I = 2, U = 3 (pred has an extra pixel); mask 1: I = 0, U = 2.
A_PRED = [[[1, 1, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]]
A_GT = [[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0]]]
# Sample B: one 3x2 mask with an ignored pixel; I = 1, U = 1 (the predicted 255 pixel is dropped).
B_PRED = [[[1, 1], [0, 0], [0, 0]]]
B_GT = [[[1, 255], [0, 0], [0, 0]]]
# Sample C: one 2x2 empty mask predicted empty; I = 0, U = 0 -> IoU 1.
C_PRED = [[[0, 0], [0, 0]]]
C_GT = [[[0, 0], [0, 0]]]


def samples():
    return [
        dict(pred_masks=b(A_PRED), gt_masks=u8(A_GT), query_type='color', sample_idx=0),
        dict(pred_masks=b(B_PRED), gt_masks=u8(B_GT), query_type='shape', sample_idx=1),
        dict(pred_masks=b(C_PRED), gt_masks=u8(C_GT), query_type='color', sample_idx=2),
    ]


IOU_A0 = 2 / (3 + 1e-5)
IOU_A1 = 0 / (2 + 1e-5)
IOU_B = 1 / (1 + 1e-5)
IOU_C = 1.0
GIOU = (IOU_A0 + IOU_A1 + IOU_B + IOU_C) / (4 + 1e-5)
CIOU = (2 + 0 + 1 + 0) / (3 + 2 + 1 + 0 + 1e-10)
COLOR_GIOU = (IOU_A0 + IOU_A1 + IOU_C) / (3 + 1e-5)
COLOR_CIOU = (2 + 0 + 0) / (3 + 2 + 0 + 1e-10)
SHAPE_GIOU = IOU_B / (1 + 1e-5)
SHAPE_CIOU = 1 / (1 + 1e-10)


def test_process_and_compute_metrics():
    metric = ReasonSegMetric()
    metric.process(data_batch={}, data_samples=samples())
    out = metric.compute_metrics(metric.results)
    assert set(out) == {'gIoU', 'cIoU'}
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)
    # (2/3 + 0 + 1 + 1) / 4 ~ 0.6667 and 3 / 6 = 0.5.
    assert out['gIoU'] == pytest.approx(2 / 3, rel=1e-4)
    assert out['cIoU'] == pytest.approx(0.5, rel=1e-9)


def test_results_accumulate_over_batches():
    metric = ReasonSegMetric()
    s = samples()
    metric.process(data_batch={}, data_samples=s[:1])
    metric.process(data_batch={}, data_samples=s[1:])
    out = metric.compute_metrics(metric.results)
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)


def test_group_by_query_type():
    metric = ReasonSegMetric(group_by='query_type')
    metric.process(data_batch={}, data_samples=samples())
    out = metric.compute_metrics(metric.results)
    assert set(out) == {'gIoU', 'cIoU', 'color/gIoU', 'color/cIoU', 'shape/gIoU', 'shape/cIoU'}
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)
    assert out['color/gIoU'] == pytest.approx(COLOR_GIOU, rel=1e-9)
    assert out['color/cIoU'] == pytest.approx(COLOR_CIOU, rel=1e-9)
    assert out['shape/gIoU'] == pytest.approx(SHAPE_GIOU, rel=1e-9)
    assert out['shape/cIoU'] == pytest.approx(SHAPE_CIOU, rel=1e-9)


def test_group_by_boolean_key():
    metric = ReasonSegMetric(group_by='is_sentence')
    s = samples()
    for sample, flag in zip(s, [True, False, True], strict=True):
        sample['is_sentence'] = flag
    metric.process(data_batch={}, data_samples=s)
    out = metric.compute_metrics(metric.results)
    assert out['True/gIoU'] == pytest.approx(COLOR_GIOU, rel=1e-9)
    assert out['False/cIoU'] == pytest.approx(SHAPE_CIOU, rel=1e-9)


def test_evaluate_one_mask_per_sample_has_no_prefix():
    metric = METRICS.build(dict(type='ReasonSegMetric'))
    s = samples()[1:]  # one mask each
    metric.process(data_batch={}, data_samples=s)
    out = metric.evaluate(len(s))
    assert set(out) == {'gIoU', 'cIoU'}
    assert out['gIoU'] == pytest.approx((IOU_B + IOU_C) / (2 + 1e-5), rel=1e-9)
    assert out['cIoU'] == pytest.approx(1 / (1 + 1e-10), rel=1e-9)
    # evaluate() clears the results for the next epoch.
    assert metric.results == []


def test_evaluate_with_prefix():
    metric = ReasonSegMetric(prefix='val')
    metric.process(data_batch={}, data_samples=samples()[1:])
    out = metric.evaluate(2)
    assert set(out) == {'val/gIoU', 'val/cIoU'}


def test_evaluate_keeps_all_masks_of_multi_mask_samples():
    # mmengine calls evaluate(len(dataset)), i.e. the number of *samples*; every mask of
    # every sample must still count (sample A has 2 masks: 3 samples, 4 masks).
    metric = ReasonSegMetric()
    metric.process(data_batch={}, data_samples=samples())
    out = metric.evaluate(3)
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)


def test_mask_count_mismatch_raises():
    metric = ReasonSegMetric()
    bad = dict(pred_masks=b(A_PRED[:1]), gt_masks=u8(A_GT), sample_idx=7)
    with pytest.raises(ValueError, match='1 predicted masks for 2 targets'):
        metric.process(data_batch={}, data_samples=[bad])


def test_shape_mismatch_raises():
    metric = ReasonSegMetric()
    bad = dict(pred_masks=b(B_PRED), gt_masks=u8(C_GT))
    with pytest.raises(ValueError):
        metric.process(data_batch={}, data_samples=[bad])


def test_custom_ignore_index():
    metric = ReasonSegMetric(ignore_index=9)
    gt = u8([[[1, 9], [255, 0]]])
    pred = b([[[1, 1], [1, 0]]])
    metric.process(data_batch={}, data_samples=[dict(pred_masks=pred, gt_masks=gt)])
    out = metric.compute_metrics(metric.results)
    # 9 ignored; 255 is background here: I = 1, U = 2.
    assert out['cIoU'] == pytest.approx(1 / (2 + 1e-10), rel=1e-9)
    assert out['gIoU'] == pytest.approx((1 / (2 + 1e-5)) / (1 + 1e-5), rel=1e-9)


def test_mmengine_evaluator_with_data_samples():
    from mmengine.evaluator import Evaluator

    from lisakit.structures import ReasonSegDataSample

    data_samples = []
    for s in samples()[1:]:
        ds = ReasonSegDataSample(metainfo=dict(query_type=s['query_type']))
        ds.pred_masks = s['pred_masks']
        ds.gt_masks = s['gt_masks']
        data_samples.append(ds)
    evaluator = Evaluator(ReasonSegMetric(group_by='query_type'))
    evaluator.process(data_samples, data_batch={})
    out = evaluator.evaluate(len(data_samples))
    assert out['gIoU'] == pytest.approx((IOU_B + IOU_C) / (2 + 1e-5), rel=1e-9)
    assert out['shape/gIoU'] == pytest.approx(SHAPE_GIOU, rel=1e-9)
    assert out['color/gIoU'] == pytest.approx(IOU_C / (1 + 1e-5), rel=1e-9)
    assert out['color/cIoU'] == 0.0


def test_generated_answers_without_seg_are_counted():
    import torch

    from lisakit.evaluation import ReasonSegMetric

    metric = ReasonSegMetric()
    gt = torch.ones(1, 2, 2, dtype=torch.uint8)
    empty = torch.zeros(1, 2, 2, dtype=torch.bool)
    metric.process(
        {},
        [
            dict(pred_masks=empty, gt_masks=gt, num_generated_seg=0),
            dict(pred_masks=gt.bool(), gt_masks=gt, num_generated_seg=1),
        ],
    )
    out = metric.compute_metrics(metric.results)
    assert out['no_seg_answers'] == 1.0
    assert out['gIoU'] == pytest.approx((4 / (4 + 1e-5)) / (2 + 1e-5), rel=1e-9)
