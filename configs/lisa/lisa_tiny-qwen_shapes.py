# The shapes demo (lisa_tiny_shapes.py: data, schedule, SAM head) with a tiny random
# Qwen2.5-VL as the VLM (configs/_base_/models/tiny_qwen2.5-vl_backbone.py, the backbone of
# _base_/models/lisa_tiny_qwen.py): only the backbone changes.
# `python tools/train.py configs/lisa/lisa_tiny-qwen_shapes.py`
# Measured on 2 CPU cores (configs/lisa/README.md): the LLaVA demo's settings (colour
# queries, fixed answer "<SEG>.", lr 1e-3, 6 epochs) need no change: val cIoU 0.9365.
_base_ = ['./lisa_tiny_shapes.py', '../_base_/models/tiny_qwen2.5-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
