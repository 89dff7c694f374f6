from .base_mask_head import BaseMaskHead, mask_targets
from .sam_head import SAMHead

__all__ = ['BaseMaskHead', 'SAMHead', 'mask_targets']
