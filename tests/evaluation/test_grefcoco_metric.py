"""GRefCOCOMetric and its functional parts against hand-computed values."""

import pytest
import torch

from lisakit.evaluation import GRefCOCOMetric, ReasonSegMetric
from lisakit.evaluation.functional import (
    merge_gt_masks,
    merged_sample_score,
    object_matched_iou,
)
from lisakit.registry import METRICS

EPS = 1e-5


def b(x):
    return torch.tensor(x, dtype=torch.bool)


def u8(x):
    return torch.tensor(x, dtype=torch.uint8)


EMPTY = [[0, 0, 0], [0, 0, 0]]
# Two targets (left and right column) of a 2x3 image.
T_LEFT = [[1, 0, 0], [1, 0, 0]]
T_RIGHT = [[0, 0, 1], [0, 0, 1]]


def run(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_merge_gt_keeps_ignore_only_where_no_target():
    gt = u8([[[1, 255, 0]], [[255, 1, 0]]])
    assert merge_gt_masks(gt).tolist() == [[1, 1, 0]]
    assert merge_gt_masks(u8([[[255, 0, 0]]])).tolist() == [[255, 0, 0]]
    assert merge_gt_masks(torch.zeros(0, 2, 2, dtype=torch.uint8)).tolist() == [[0, 0], [0, 0]]


def test_empty_on_empty_is_one_and_any_pixel_is_zero():
    s = merged_sample_score(b([EMPTY]), u8([EMPTY]), no_target=True)
    assert (s['iou'], s['I'], s['U'], s['rejected']) == (1.0, 0, 0, True)
    s = merged_sample_score(torch.zeros(0, 2, 3, dtype=torch.bool), u8([EMPTY]), no_target=True)
    assert s['iou'] == 1.0 and s['rejected']
    s = merged_sample_score(b([[[0, 1, 0], [0, 1, 0]]]), u8([EMPTY]), no_target=True)
    assert (s['iou'], s['I'], s['U'], s['rejected']) == (0.0, 0, 2, False)


def test_empty_prediction_on_a_target_is_zero_and_a_rejection():
    s = merged_sample_score(b([EMPTY]), u8([T_LEFT]), no_target=False)
    assert (s['iou'], s['I'], s['U'], s['rejected']) == (0.0, 0, 2, True)


def test_union_of_predictions_against_union_of_targets():
    # preds: left column + the middle top pixel; targets: left and right columns
    pred = b([T_LEFT, [[0, 1, 0], [0, 0, 0]]])
    s = merged_sample_score(pred, u8([T_LEFT, T_RIGHT]), no_target=False)
    assert (s['I'], s['U']) == (2, 5)
    assert s['iou'] == pytest.approx(2 / (5 + EPS))


def test_explicit_rejection_flag_wins():
    s = merged_sample_score(b([T_LEFT]), u8([T_LEFT]), no_target=False, rejected=True)
    assert s['I'] == 0 and s['U'] == 2 and s['iou'] == 0.0


def samples():
    return [
        # 0: target (2 objects), prediction covers the left one: I 2, U 4
        dict(pred_masks=b([T_LEFT]), gt_masks=u8([T_LEFT, T_RIGHT]), num_targets=2, kind='a'),
        # 1: target, empty prediction: a false rejection, I 0, U 2
        dict(pred_masks=b([EMPTY]), gt_masks=u8([T_RIGHT]), no_target=False, kind='a'),
        # 2: no target, empty prediction: correct rejection, iou 1, U 0
        dict(pred_masks=b([EMPTY]), gt_masks=u8([EMPTY]), no_target=True, kind='b'),
        # 3: no target, a 2-pixel prediction: iou 0, U 2
        dict(pred_masks=b([T_RIGHT]), gt_masks=u8([EMPTY]), no_target=True, kind='b'),
        # 4: no target, no mask at all (text rejection), no flag: inferred from the empty gt
        dict(pred_masks=torch.zeros(0, 2, 3, dtype=torch.bool), gt_masks=u8([EMPTY])),
    ]


def test_metric_hand_computed():
    m = run(GRefCOCOMetric(group_by='kind'), samples())
    ious = [2 / (4 + EPS), 0.0, 1.0, 0.0, 1.0]
    assert m['gIoU'] == pytest.approx(sum(ious) / (5 + EPS))
    assert m['cIoU'] == pytest.approx(2 / (4 + 2 + 0 + 2 + 0 + 1e-10))
    assert m['N-acc'] == pytest.approx(2 / 3)  # samples 2 and 4 of 2, 3, 4
    assert m['T-acc'] == pytest.approx(1 / 2)  # sample 0 of 0, 1
    assert m['multi/gIoU'] == pytest.approx(ious[0] / (1 + EPS))
    assert m['a/T-acc'] == pytest.approx(0.5) and 'a/N-acc' not in m
    assert m['b/N-acc'] == pytest.approx(0.5) and 'b/T-acc' not in m
    assert 'None/gIoU' in m  # sample 4 has no 'kind'


def test_metric_reads_pred_rejected():
    """A model with a rejection token: its flag decides, not the masks (GSVA's N-acc /
    T-acc), and a rejected target sample scores I = 0."""
    zero = torch.zeros(0, 2, 3, dtype=torch.bool)
    data = [
        # no target, flagged: N-acc hit (a non-empty mask would not matter), iou 1, U 0
        dict(pred_masks=zero, gt_masks=u8([EMPTY]), no_target=True, pred_rejected=True),
        # no target, not flagged although the mask is empty: N-acc miss, iou 0, U 0
        dict(pred_masks=b([EMPTY]), gt_masks=u8([EMPTY]), no_target=True, pred_rejected=False),
        # target, not flagged, exact mask: T-acc hit, I 2, U 2
        dict(pred_masks=b([T_LEFT]), gt_masks=u8([T_LEFT]), no_target=False, pred_rejected=False),
        # target, flagged (masks emptied): T-acc miss, I 0, U 2
        dict(pred_masks=b([EMPTY]), gt_masks=u8([T_RIGHT]), no_target=False, pred_rejected=True),
        # target, not flagged, empty mask: T-acc hit (the flag wins), I 0, U 2
        dict(pred_masks=b([EMPTY]), gt_masks=u8([T_RIGHT]), no_target=False, pred_rejected=False),
    ]
    m = run(GRefCOCOMetric(), data)
    assert m['N-acc'] == pytest.approx(1 / 2)
    assert m['T-acc'] == pytest.approx(2 / 3)
    ious = [1.0, 0.0, 2 / (2 + EPS), 0.0, 0.0]
    assert m['gIoU'] == pytest.approx(sum(ious) / (5 + EPS))
    assert m['cIoU'] == pytest.approx(2 / (0 + 0 + 2 + 2 + 2 + 1e-10))
    # without the flags the empty-mask rule gives other counts
    m = run(GRefCOCOMetric(), [{k: v for k, v in d.items() if k != 'pred_rejected'} for d in data])
    assert m['N-acc'] == 1.0 and m['T-acc'] == pytest.approx(1 / 3)


def test_equals_reasonseg_metric_on_single_target_data():
    data = [
        dict(pred_masks=b([[[1, 1, 1], [0, 0, 0]]]), gt_masks=u8([[[1, 1, 0], [0, 0, 0]]])),
        dict(pred_masks=b([[[1, 1], [0, 0]]]), gt_masks=u8([[[1, 255], [0, 0]]])),
        dict(pred_masks=b([[[0, 0], [0, 0]]]), gt_masks=u8([[[0, 0], [0, 0]]])),
        dict(pred_masks=b([[[0, 0], [0, 0]]]), gt_masks=u8([[[0, 1], [0, 0]]])),
    ]
    ours = run(GRefCOCOMetric(), data)
    theirs = run(ReasonSegMetric(), data)
    assert ours['gIoU'] == pytest.approx(theirs['gIoU'], abs=0, rel=1e-12)
    assert ours['cIoU'] == pytest.approx(theirs['cIoU'], abs=0, rel=1e-12)


def test_object_matched_iou_hungarian():
    gt = u8([T_LEFT, T_RIGHT])
    # predictions in the other order: matching pairs them, both exact
    assert object_matched_iou(b([T_RIGHT, T_LEFT]), gt) == pytest.approx(2 / (2 + EPS))
    # one prediction for two targets: 1 of 2 matched
    assert object_matched_iou(b([T_RIGHT]), gt) == pytest.approx((2 / (2 + EPS)) / 2)
    # generate mode kept 2 of 3 generated masks: the extra one counts 0
    assert object_matched_iou(b([T_RIGHT, T_LEFT]), gt, num_pred=3) == pytest.approx(
        2 * (2 / (2 + EPS)) / 3
    )

    # 1x6 masks: IoU(A, X) = 3/4, IoU(A, Y) = 1/4, IoU(B, X) = 3/4, IoU(B, Y) = 2/3.
    # Taking B-X first (a tie for the best pair) leaves A-Y: (3/4 + 1/4) / 2;
    # the optimal one-to-one assignment is A-X, B-Y: (3/4 + 2/3) / 2.
    def row(pixels):
        return [[int(i in pixels) for i in range(6)]]

    preds = b([row({1, 3, 5}), row({0, 1, 5})])
    targets = u8([row({0, 1, 3, 5}), row({0, 5})])
    expected = (3 / (4 + EPS) + 2 / (3 + EPS)) / 2
    assert object_matched_iou(preds, targets) == pytest.approx(expected)
    empty = torch.zeros(0, 2, 3, dtype=torch.bool)
    assert object_matched_iou(empty, gt[:0]) == 1.0
    assert object_matched_iou(b([T_LEFT]), gt[:0]) == 0.0
    assert object_matched_iou(empty, gt) == 0.0


def test_object_iou_key_and_generate_counts():
    data = [
        dict(pred_masks=b([T_RIGHT, T_LEFT]), gt_masks=u8([T_LEFT, T_RIGHT]), num_generated_seg=2),
        dict(pred_masks=b([EMPTY]), gt_masks=u8([EMPTY]), no_target=True, num_generated_seg=0),
    ]
    m = run(METRICS.build(dict(type='GRefCOCOMetric', object_iou=True)), data)
    assert m['object_mIoU'] == pytest.approx((2 / (2 + EPS) + 1.0) / 2)
    assert m['no_seg_answers'] == 1.0
    assert m['N-acc'] == 1.0 and m['T-acc'] == 1.0


def test_size_mismatch_raises():
    with pytest.raises(ValueError, match='differ in size'):
        run(GRefCOCOMetric(), [dict(pred_masks=b([[[1]]]), gt_masks=u8([T_LEFT]))])
