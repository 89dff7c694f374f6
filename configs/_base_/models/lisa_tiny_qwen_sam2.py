# The tiny LISA with a SAM 2 head of lisa_tiny_sam2.py with the tiny random Qwen2.5-VL of
# tiny_qwen2.5-vl_backbone.py instead of LLaVA.
_base_ = ['./lisa_tiny_sam2.py', './tiny_qwen2.5-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
