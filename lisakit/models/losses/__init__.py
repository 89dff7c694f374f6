from .lm_loss import LMCrossEntropyLoss
from .mask_losses import DiceLoss, MaskBCELoss, bce_per_mask, dice_per_mask

__all__ = ['DiceLoss', 'LMCrossEntropyLoss', 'MaskBCELoss', 'bce_per_mask', 'dice_per_mask']
