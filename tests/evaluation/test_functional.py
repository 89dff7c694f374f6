"""Unit tests of lisakit.evaluation.functional (LISA's gIoU / cIoU) with hand counts.

LISA's formulas: iou_k = I_k / (U_k + 1e-5), or 1 if U_k == 0;
gIoU = sum_k iou_k / (N + 1e-5); cIoU = sum_k I_k / (sum_k U_k + 1e-10).
Pixels whose target is 255 count in neither I nor U.
"""

import numpy as np
import pytest
import torch

from lisakit.evaluation.functional import giou_ciou, intersection_union, mask_iou, summarize_iou

# Mask 1 (3x3). Ignored target pixels at (1, 1) and (1, 2).
GT1 = [[1, 1, 0], [0, 255, 255], [0, 0, 0]]
PRED1 = [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
# Valid predicted pixels: (0,0), (1,0) [(1,1) is ignored]; target pixels: (0,0), (0,1).
I1, U1 = 1, 3
# Mask 2 (2x4): empty target, empty prediction -> U = 0, IoU = 1.
GT2 = [[0, 0, 0, 0], [0, 0, 0, 0]]
PRED2 = [[0, 0, 0, 0], [0, 0, 0, 0]]
I2, U2 = 0, 0
# Mask 3 (2x2): every pixel ignored, prediction everywhere -> U = 0, IoU = 1.
GT3 = [[255, 255], [255, 255]]
PRED3 = [[1, 1], [1, 1]]
I3, U3 = 0, 0
# Mask 4 (2x2): full target, empty prediction -> I = 0, U = 4.
GT4 = [[1, 1], [1, 1]]
PRED4 = [[0, 0], [0, 0]]
I4, U4 = 0, 4
# Mask 5 (4x3): I = 4 (column 0 rows 0-3), U = 4 + 2 (pred extra) + 1 (gt extra) = 7.
GT5 = [[1, 0, 0], [1, 0, 0], [1, 0, 1], [1, 0, 255]]
PRED5 = [[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 1]]
I5, U5 = 4, 7

ALL_GT = [GT1, GT2, GT3, GT4, GT5]
ALL_PRED = [PRED1, PRED2, PRED3, PRED4, PRED5]
GIOU = (1 / (3 + 1e-5) + 1.0 + 1.0 + 0 / (4 + 1e-5) + 4 / (7 + 1e-5)) / (5 + 1e-5)
CIOU = (1 + 0 + 0 + 0 + 4) / (3 + 0 + 0 + 4 + 7 + 1e-10)


def u8(x):
    return np.array(x, dtype=np.uint8)


@pytest.mark.parametrize(
    'pred, gt, i, u',
    [
        (PRED1, GT1, I1, U1),
        (PRED2, GT2, I2, U2),
        (PRED3, GT3, I3, U3),
        (PRED4, GT4, I4, U4),
        (PRED5, GT5, I5, U5),
    ],
)
def test_intersection_union_hand_counts(pred, gt, i, u):
    inter, union = intersection_union(u8(pred), u8(gt))
    assert int(inter) == i
    assert int(union) == u
    assert inter.dim() == 0 and union.dim() == 0


def test_intersection_union_batched_and_int64():
    pred = torch.tensor([PRED4, [[1, 1], [0, 1]]], dtype=torch.bool)
    gt = torch.tensor([GT4, [[1, 0], [255, 0]]], dtype=torch.uint8)
    inter, union = intersection_union(pred, gt)
    assert inter.dtype == torch.int64 and union.dtype == torch.int64
    # Second mask: valid pixels (0,0), (0,1), (1,1); P = {(0,0),(0,1),(1,1)}, G = {(0,0)}.
    assert inter.tolist() == [0, 1]
    assert union.tolist() == [4, 3]


def test_ignore_pixels_excluded_from_both_counts():
    # Without the ignore value the same prediction has a larger union.
    gt = u8(GT1)
    assert [int(v) for v in intersection_union(u8(PRED1), gt)] == [1, 3]
    gt_no_ignore = np.where(gt == 255, 0, gt)
    assert [int(v) for v in intersection_union(u8(PRED1), gt_no_ignore)] == [1, 4]
    # A different ignore_index: 255 is then a plain non-object value.
    assert [int(v) for v in intersection_union(u8(PRED1), gt, ignore_index=7)] == [1, 4]
    gt7 = np.where(gt == 255, 7, gt)
    assert [int(v) for v in intersection_union(u8(PRED1), gt7, ignore_index=7)] == [1, 3]


def test_mask_iou():
    assert mask_iou(0, 0) == 1.0
    assert mask_iou(3, 0) == 1.0
    assert mask_iou(2, 4) == pytest.approx(2 / (4 + 1e-5), rel=1e-12)
    assert mask_iou(0, 5) == 0.0
    assert mask_iou(5, 5) == pytest.approx(5 / (5 + 1e-5), rel=1e-12)
    assert mask_iou(5, 5) < 1.0


def test_summarize_iou_formulas():
    out = summarize_iou([I1, I2, I3, I4, I5], [U1, U2, U3, U4, U5])
    assert set(out) == {'gIoU', 'cIoU'}
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)
    assert isinstance(out['gIoU'], float) and isinstance(out['cIoU'], float)


def test_summarize_iou_empty():
    out = summarize_iou([], [])
    assert out == {'gIoU': 0.0, 'cIoU': 0.0}


def test_giou_ciou_several_sizes_numpy():
    out = giou_ciou([u8(p) for p in ALL_PRED], [u8(g) for g in ALL_GT])
    assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
    assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)
    # Sanity of the hand values: about 0.5143 and 0.3571.
    assert GIOU == pytest.approx((1 / 3 + 2 + 4 / 7) / 5, rel=1e-4)
    assert CIOU == pytest.approx(5 / 14, rel=1e-9)


def test_giou_ciou_torch_inputs_bool_and_01_agree():
    gts = [torch.tensor(g, dtype=torch.uint8) for g in ALL_GT]
    as_bool = giou_ciou([torch.tensor(p, dtype=torch.bool) for p in ALL_PRED], gts)
    as_int = giou_ciou([torch.tensor(p, dtype=torch.int64) for p in ALL_PRED], gts)
    as_np_bool = giou_ciou([np.array(p, dtype=bool) for p in ALL_PRED], [u8(g) for g in ALL_GT])
    for out in (as_bool, as_int, as_np_bool):
        assert out['gIoU'] == pytest.approx(GIOU, rel=1e-9)
        assert out['cIoU'] == pytest.approx(CIOU, rel=1e-9)


def test_giou_ciou_mixed_numpy_and_torch_and_int32_gt():
    preds = [torch.tensor(PRED1, dtype=torch.bool), u8(PRED5)]
    gts = [np.array(GT1, dtype=np.int32), torch.tensor(GT5, dtype=torch.int32)]
    out = giou_ciou(preds, gts)
    assert out['gIoU'] == pytest.approx((1 / (3 + 1e-5) + 4 / (7 + 1e-5)) / (2 + 1e-5), rel=1e-9)
    assert out['cIoU'] == pytest.approx(5 / (10 + 1e-10), rel=1e-9)


def test_empty_union_scores_one_for_giou_and_nothing_for_ciou():
    # Only empty masks: every IoU is 1; cIoU = 0 / (0 + 1e-10) = 0.
    out = giou_ciou([u8(PRED2), u8(PRED3)], [u8(GT2), u8(GT3)])
    assert out['gIoU'] == pytest.approx(2 / (2 + 1e-5), rel=1e-9)
    assert out['cIoU'] == 0.0
    # Adding an empty mask to mask 4 changes gIoU but not cIoU.
    alone = giou_ciou([u8(PRED5)], [u8(GT5)])
    with_empty = giou_ciou([u8(PRED5), u8(PRED2)], [u8(GT5), u8(GT2)])
    assert alone['gIoU'] == pytest.approx((4 / (7 + 1e-5)) / (1 + 1e-5), rel=1e-9)
    assert with_empty['gIoU'] == pytest.approx((4 / (7 + 1e-5) + 1) / (2 + 1e-5), rel=1e-9)
    assert alone['cIoU'] == pytest.approx(with_empty['cIoU'], rel=1e-12)
    assert with_empty['cIoU'] == pytest.approx(4 / (7 + 1e-10), rel=1e-9)


def test_perfect_prediction():
    gt = u8([[0, 1, 1], [255, 1, 0]])
    pred = u8([[0, 1, 1], [1, 1, 0]])  # the ignored pixel does not matter
    out = giou_ciou([pred], [gt])
    assert out['gIoU'] == pytest.approx((3 / (3 + 1e-5)) / (1 + 1e-5), rel=1e-9)
    assert out['cIoU'] == pytest.approx(3 / (3 + 1e-10), rel=1e-9)


def test_giou_ciou_custom_ignore_index():
    gt = u8([[1, 9], [0, 0]])
    pred = u8([[1, 1], [0, 0]])
    # 9 ignored: I = 1, U = 1.
    out = giou_ciou([pred], [gt], ignore_index=9)
    assert out['cIoU'] == pytest.approx(1 / (1 + 1e-10), rel=1e-9)
    # Default (255): the 9 pixel is background, so U = 2.
    out = giou_ciou([pred], [gt])
    assert out['cIoU'] == pytest.approx(1 / (2 + 1e-10), rel=1e-9)


def test_giou_ciou_transposed_numpy_view():
    # A non-contiguous (transposed) view is valid input.
    out = giou_ciou([u8(PRED5).T], [u8(GT5).T])
    assert out['cIoU'] == pytest.approx(4 / (7 + 1e-10), rel=1e-9)
    assert out['gIoU'] == pytest.approx((4 / (7 + 1e-5)) / (1 + 1e-5), rel=1e-9)


def test_giou_ciou_negative_stride_numpy_view():
    # A flipped view (negative strides, e.g. from np.fliplr or img[:, ::-1]) is valid input.
    out = giou_ciou([np.fliplr(u8(PRED5))], [np.fliplr(u8(GT5))])
    assert out['cIoU'] == pytest.approx(4 / (7 + 1e-10), rel=1e-9)
    inter, union = intersection_union(u8(PRED5)[::-1], u8(GT5)[::-1])
    assert (int(inter), int(union)) == (4, 7)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match='shapes differ'):
        intersection_union(u8(PRED1), u8(GT4))
    with pytest.raises(ValueError, match='shapes differ'):
        giou_ciou([u8(PRED1), u8(PRED2)], [u8(GT1), u8(GT4)])


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match='2 predictions but 1 targets'):
        giou_ciou([u8(PRED1), u8(PRED2)], [u8(GT1)])
