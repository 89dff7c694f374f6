from .base_mask_head import BaseMaskHead, mask_targets
from .sam2_head import SAM2Head
from .sam_head import SAMHead

__all__ = ['BaseMaskHead', 'SAM2Head', 'SAMHead', 'mask_targets']
