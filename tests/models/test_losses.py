"""Unit tests of lisakit.models.losses against hand-computed values.

Notation: for a logit x and a 0/1 target t,
BCE-with-logits(x, t) = log(1 + exp(x)) - t * x and sigmoid(x) = 1 / (1 + exp(-x)).
"""

import math

import pytest
import torch

from lisakit.models.losses import (
    DiceLoss,
    LMCrossEntropyLoss,
    MaskBCELoss,
    bce_per_mask,
    dice_per_mask,
)


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(x, t):
    return math.log(1.0 + math.exp(x)) - t * x


# Mask A (2x2): logits and targets.
A_X = [[0.0, 1.0], [-2.0, 3.0]]
A_T = [[1.0, 0.0], [0.0, 1.0]]
# BCE of A: pixel mean of the four BCE terms.
A_BCE = (
    math.log(2.0) + math.log(1 + math.e) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-3))
) / 4
# Dice of A: p = sigmoid(x); sum(p*t) = sig(0) + sig(3), sum(p) = all four, sum(t) = 2.
A_SPT = 0.5 + sig(3.0)
A_SP = 0.5 + sig(1.0) + sig(-2.0) + sig(3.0)
A_DICE = 1 - (2 * A_SPT / 1000 + 1e-6) / (A_SP / 1000 + 2 / 1000 + 1e-6)

# Mask B (2x2): all-zero target, logits 0 (p = 0.5 everywhere).
B_X = [[0.0, 0.0], [0.0, 0.0]]
B_T = [[0.0, 0.0], [0.0, 0.0]]
B_BCE = math.log(2.0)
# sum(p*t) = 0, sum(p) = 2, sum(t) = 0.
B_DICE = 1 - (0 + 1e-6) / (2 / 1000 + 0 + 1e-6)

# Mask C (3x3): a plus-shaped target, logits +2 on it and -1 elsewhere.
C_T = [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
C_X = [[2.0 if t else -1.0 for t in row] for row in C_T]
# 5 target pixels with x = 2, t = 1 and 4 background pixels with x = -1, t = 0.
C_BCE = (5 * math.log(1 + math.exp(-2)) + 4 * math.log(1 + math.exp(-1))) / 9
C_DICE = 1 - (2 * 5 * sig(2) / 1000 + 1e-6) / ((5 * sig(2) + 4 * sig(-1)) / 1000 + 5 / 1000 + 1e-6)


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_hand_values_are_self_consistent():
    # The BCE helper agrees with the explicit log-sigmoid form.
    x = 0.7
    assert bce(x, 1) == pytest.approx(-math.log(sig(x)), rel=1e-12)
    assert bce(x, 0) == pytest.approx(-math.log(1 - sig(x)), rel=1e-12)
    # Dice scale 1000 and eps 1e-6 equal an effective smoothing of 1e-3 pixels.
    assert A_DICE == pytest.approx(1 - (2 * A_SPT + 1e-3) / (A_SP + 2 + 1e-3), rel=1e-12)


def test_bce_per_mask_values():
    logits = torch.stack([t(A_X), t(B_X)])
    targets = torch.stack([t(A_T), t(B_T)])
    out = bce_per_mask(logits, targets)
    assert out.shape == (2,)
    assert out[0].item() == pytest.approx(A_BCE, rel=1e-6)
    assert out[1].item() == pytest.approx(B_BCE, rel=1e-6)
    assert bce_per_mask(t(C_X)[None], t(C_T)[None]).item() == pytest.approx(C_BCE, rel=1e-6)


def test_dice_per_mask_values():
    logits = torch.stack([t(A_X), t(B_X)])
    targets = torch.stack([t(A_T), t(B_T)])
    out = dice_per_mask(logits, targets)
    assert out.shape == (2,)
    assert out[0].item() == pytest.approx(A_DICE, rel=1e-5)
    assert out[1].item() == pytest.approx(B_DICE, rel=1e-5)
    # B: 1 - 1e-3 / (2 + 1e-3), about 0.9995.
    assert out[1].item() == pytest.approx(1 - 1e-3 / 2.001, rel=1e-5)
    assert dice_per_mask(t(C_X)[None], t(C_T)[None]).item() == pytest.approx(C_DICE, rel=1e-5)


def test_dice_smoothing_makes_empty_vs_empty_zero_and_perfect_zero():
    # Confident empty prediction on an empty target: 1 - (0 + 1e-3) / (~0 + 0 + 1e-3) ~ 0.
    x = torch.full((1, 3, 3), -30.0)
    assert dice_per_mask(x, torch.zeros(1, 3, 3)).item() == pytest.approx(0.0, abs=1e-6)
    # Confident perfect prediction: 1 - (2*5 + 1e-3) / (5 + 5 + 1e-3) ~ 0.
    target = t(C_T)[None]
    x = (target * 2 - 1) * 30.0
    assert dice_per_mask(x, target).item() == pytest.approx(0.0, abs=1e-6)
    # Confident fully-wrong prediction: 1 - 1e-3 / (4 + 5 + 1e-3).
    assert dice_per_mask(-x, target).item() == pytest.approx(1 - 1e-3 / 9.001, rel=1e-5)


def test_dice_custom_scale_and_eps():
    # scale=1, eps=1: 1 - (2*sum(pt) + 1) / (sum(p) + sum(t) + 1).
    out = dice_per_mask(t(A_X)[None], t(A_T)[None], scale=1.0, eps=1.0)
    assert out.item() == pytest.approx(1 - (2 * A_SPT + 1) / (A_SP + 2 + 1), rel=1e-5)
    loss = DiceLoss(loss_weight=1.0, scale=1.0, eps=1.0)(t(A_X)[None], t(A_T)[None])
    assert loss.item() == pytest.approx(1 - (2 * A_SPT + 1) / (A_SP + 2 + 1), rel=1e-5)


def test_mask_bce_loss_several_masks_mean():
    logits = torch.stack([t(A_X), t(B_X)])
    targets = torch.stack([t(A_T), t(B_T)])
    loss = MaskBCELoss(loss_weight=1.0)(logits, targets)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx((A_BCE + B_BCE) / (2 + 1e-8), rel=1e-6)


def test_dice_loss_several_masks_mean():
    logits = torch.stack([t(A_X), t(B_X)])
    targets = torch.stack([t(A_T), t(B_T)])
    loss = DiceLoss(loss_weight=1.0)(logits, targets)
    assert loss.item() == pytest.approx((A_DICE + B_DICE) / (2 + 1e-8), rel=1e-5)


def test_groups_with_different_sizes_average_per_mask():
    # Image 1: masks A and B (2x2); image 2: mask C (3x3). Every mask weighs the same.
    logits = [torch.stack([t(A_X), t(B_X)]), t(C_X)[None]]
    targets = [torch.stack([t(A_T), t(B_T)]), t(C_T)[None]]
    bce_loss = MaskBCELoss(loss_weight=1.0)(logits, targets)
    dice_loss = DiceLoss(loss_weight=1.0)(logits, targets)
    assert bce_loss.item() == pytest.approx((A_BCE + B_BCE + C_BCE) / (3 + 1e-8), rel=1e-6)
    assert dice_loss.item() == pytest.approx((A_DICE + B_DICE + C_DICE) / (3 + 1e-8), rel=1e-5)
    # Not the mean of per-image means: ((A+B)/2 + C) / 2 differs.
    per_image = ((A_BCE + B_BCE) / 2 + C_BCE) / 2
    assert abs(bce_loss.item() - per_image) > 1e-3


def test_group_with_zero_masks_does_not_count():
    logits = [t(A_X)[None], torch.zeros(0, 5, 5), t(C_X)[None]]
    targets = [t(A_T)[None], torch.zeros(0, 5, 5), t(C_T)[None]]
    loss = MaskBCELoss(loss_weight=1.0)(logits, targets)
    assert loss.item() == pytest.approx((A_BCE + C_BCE) / (2 + 1e-8), rel=1e-6)


@pytest.mark.parametrize('loss_cls', [MaskBCELoss, DiceLoss])
def test_zero_masks_give_zero(loss_cls):
    loss_fn = loss_cls()
    x = torch.zeros(0, 4, 4, requires_grad=True)
    loss = loss_fn(x, torch.zeros(0, 4, 4))
    assert loss.dim() == 0
    assert loss.item() == 0.0
    # Still part of the graph (all ranks must be able to call backward).
    loss.backward()
    assert x.grad is not None and x.grad.shape == (0, 4, 4)
    empty = [torch.zeros(0, 2, 2), torch.zeros(0, 3, 3)]
    groups = loss_fn(empty, [e.clone() for e in empty])
    assert groups.item() == 0.0
    assert loss_fn([], []).item() == 0.0


def test_default_loss_weights_are_lisa():
    # LISA: bce weight 2.0, dice weight 0.5, ce weight 1.0.
    x, y = t(A_X)[None], t(A_T)[None]
    assert MaskBCELoss()(x, y).item() == pytest.approx(2.0 * A_BCE / (1 + 1e-8), rel=1e-6)
    assert DiceLoss()(x, y).item() == pytest.approx(0.5 * A_DICE / (1 + 1e-8), rel=1e-5)
    assert LMCrossEntropyLoss().loss_weight == 1.0
    assert LMCrossEntropyLoss().ignore_index == -100


@pytest.mark.parametrize('weight', [0.0, 0.25, 3.0])
def test_loss_weight_scaling(weight):
    x = torch.stack([t(A_X), t(B_X)])
    y = torch.stack([t(A_T), t(B_T)])
    assert MaskBCELoss(loss_weight=weight)(x, y).item() == pytest.approx(
        weight * (A_BCE + B_BCE) / (2 + 1e-8), rel=1e-6, abs=1e-12
    )
    assert DiceLoss(loss_weight=weight)(x, y).item() == pytest.approx(
        weight * (A_DICE + B_DICE) / (2 + 1e-8), rel=1e-5, abs=1e-12
    )


@pytest.mark.parametrize('loss_cls', [MaskBCELoss, DiceLoss])
def test_shape_mismatch_raises(loss_cls):
    with pytest.raises(ValueError, match='same'):
        loss_cls()(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match='same'):
        loss_cls()([torch.zeros(1, 2, 2)], [torch.zeros(2, 2, 2)])
    with pytest.raises(ValueError, match='groups'):
        loss_cls()([torch.zeros(1, 2, 2)], [torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)])


def test_mask_losses_accept_integer_and_bool_targets():
    x = t(A_X)[None]
    as_uint8 = torch.tensor(A_T, dtype=torch.uint8)[None]
    assert MaskBCELoss(1.0)(x, as_uint8).item() == pytest.approx(A_BCE, rel=1e-6)
    assert DiceLoss(1.0)(x, as_uint8.bool()).item() == pytest.approx(A_DICE, rel=1e-5)


@pytest.mark.parametrize('loss_cls', [MaskBCELoss, DiceLoss])
def test_mask_loss_gradients_flow(loss_cls):
    x = torch.stack([t(A_X), t(B_X)]).requires_grad_(True)
    y = torch.stack([t(A_T), t(B_T)])
    loss_cls()(x, y).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).all()


def test_mask_bce_gradient_value():
    # d/dx mean-BCE = (sigmoid(x) - t) / HW, times loss_weight / N.
    x = t(A_X)[None].requires_grad_(True)
    MaskBCELoss(loss_weight=2.0)(x, t(A_T)[None]).backward()
    expected = [
        [2.0 * (sig(v) - tt) / 4 / (1 + 1e-8) for v, tt in zip(xr, tr, strict=True)]
        for xr, tr in zip(A_X, A_T, strict=True)
    ]
    assert torch.allclose(x.grad[0], t(expected), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Language-model cross entropy: logits at position i predict labels[i + 1].

# Vocabulary of 3; batch of 2 sequences of length 3.
LOGITS = [
    [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [100.0, 0.0, 0.0]],  # last position is never used
    [[5.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 100.0, 0.0]],
]
LABELS = [[-100, 1, 2], [-100, -100, 0]]
# Sample 0: logits[0] -> label 1: log(3) - 0; logits[1] -> label 2: log(e + e^2 + e^3) - 3.
CE_00 = math.log(3.0)
CE_01 = math.log(math.e + math.exp(2) + math.exp(3)) - 3.0
# Sample 1: logits[0] -> label -100 (ignored); logits[1] -> label 0: log(1 + 1 + e^2) - 0.
CE_11 = math.log(2.0 + math.exp(2))


def test_lm_ce_batch_token_mean_with_shift_and_ignore():
    loss = LMCrossEntropyLoss()(t(LOGITS), torch.tensor(LABELS))
    assert loss.dim() == 0
    # Mean over the 3 supervised tokens of the whole batch (LISA's reduction).
    assert loss.item() == pytest.approx((CE_00 + CE_01 + CE_11) / 3, rel=1e-6)
    # Not the mean of per-sample means.
    assert abs(loss.item() - ((CE_00 + CE_01) / 2 + CE_11) / 2) > 1e-2


def test_lm_ce_per_sample():
    loss = LMCrossEntropyLoss()(t(LOGITS), torch.tensor(LABELS), per_sample=True)
    assert loss.shape == (2,)
    assert loss[0].item() == pytest.approx((CE_00 + CE_01) / 2, rel=1e-6)
    assert loss[1].item() == pytest.approx(CE_11, rel=1e-6)


def test_lm_ce_first_label_and_last_logit_are_unused():
    labels = torch.tensor(LABELS)
    labels[:, 0] = 2  # the first label has no predicting position
    logits = t(LOGITS)
    logits[:, -1] = torch.tensor([-7.0, 9.0, 1.0])  # the last position predicts nothing
    loss = LMCrossEntropyLoss()(logits, labels)
    assert loss.item() == pytest.approx((CE_00 + CE_01 + CE_11) / 3, rel=1e-6)


def test_lm_ce_loss_weight_and_custom_ignore_index():
    loss = LMCrossEntropyLoss(loss_weight=0.5)(t(LOGITS), torch.tensor(LABELS))
    assert loss.item() == pytest.approx(0.5 * (CE_00 + CE_01 + CE_11) / 3, rel=1e-6)
    labels = torch.tensor(LABELS)
    labels[labels == -100] = 7
    labels[0, 1] = 7  # also ignore sample 0's first supervised token
    loss = LMCrossEntropyLoss(ignore_index=7)(t(LOGITS), labels)
    assert loss.item() == pytest.approx((CE_01 + CE_11) / 2, rel=1e-6)


def test_lm_ce_all_ignored_is_zero():
    labels = torch.full((2, 3), -100)
    loss = LMCrossEntropyLoss()(t(LOGITS), labels)
    assert loss.item() == 0.0
    per_sample = LMCrossEntropyLoss()(t(LOGITS), torch.tensor([[-100, 1, 2], [-100] * 3]), True)
    assert per_sample[0].item() == pytest.approx((CE_00 + CE_01) / 2, rel=1e-6)
    assert per_sample[1].item() == 0.0


def test_lm_ce_gradients_flow_only_to_used_positions():
    logits = t(LOGITS).requires_grad_(True)
    LMCrossEntropyLoss()(logits, torch.tensor(LABELS)).backward()
    grad = logits.grad
    assert torch.isfinite(grad).all()
    # Used positions: (0, 0), (0, 1), (1, 1); grad = (softmax - onehot) / 3.
    p = torch.softmax(t(LOGITS[0][0]), -1)
    assert torch.allclose(grad[0, 0], (p - torch.tensor([0.0, 1.0, 0.0])) / 3, atol=1e-7)
    for b, i in [(0, 0), (0, 1), (1, 1)]:
        assert grad[b, i].abs().sum() > 0
    for b, i in [(0, 2), (1, 0), (1, 2)]:
        assert (grad[b, i] == 0).all()


def test_lm_ce_accepts_bf16_logits():
    loss = LMCrossEntropyLoss()(t(LOGITS).bfloat16(), torch.tensor(LABELS))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx((CE_00 + CE_01 + CE_11) / 3, rel=1e-2)
