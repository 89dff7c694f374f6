# The SAM 2 shapes demo (lisa_tiny_sam2_shapes.py: data, schedule, SAM 2 head) with a tiny
# random Qwen2.5-VL as the VLM (configs/_base_/models/tiny_qwen2.5-vl_backbone.py, the
# backbone of _base_/models/lisa_tiny_qwen_sam2.py): only the backbone changes.
# `python tools/train.py configs/lisa/lisa_tiny-qwen_sam2_shapes.py`
# Measured on 2 CPU cores (configs/lisa/README.md): the LLaVA SAM 2 demo's settings (lr
# 1e-3, 6 epochs; lr 2e-3 did not learn) give val cIoU 0.8292.
_base_ = ['./lisa_tiny_sam2_shapes.py', '../_base_/models/tiny_qwen2.5-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
