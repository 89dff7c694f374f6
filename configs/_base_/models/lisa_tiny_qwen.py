# The tiny LISA of lisa_tiny.py with the tiny random Qwen2.5-VL of tiny_qwen2.5-vl_backbone.py
# instead of LLaVA: the same frozen 2-block SAM encoder, neck and 64-d SAM head.
_base_ = ['./lisa_tiny.py', './tiny_qwen2.5-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
