# The shapes demo (lisa_tiny_shapes.py: data, schedule, SAM head) with a tiny random Qwen3-VL
# as the VLM (configs/_base_/models/tiny_qwen3-vl_backbone.py): only the backbone changes.
# `python tools/train.py configs/lisa/lisa_tiny-qwen3_shapes.py`
# Measured on 2 CPU cores (configs/lisa/README.md): the Qwen2.5-VL demo's settings, no change:
# val gIoU / cIoU 0.9341 / 0.9462 after 6 epochs.
_base_ = ['./lisa_tiny_shapes.py', '../_base_/models/tiny_qwen3-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
