# The shapes demo (lisa_tiny_shapes.py: data, schedule, SAM head) with a tiny random Qwen3-VL
# as the VLM (configs/_base_/models/tiny_qwen3-vl_backbone.py): only the backbone changes.
# `python tools/train.py configs/lisa/lisa_tiny-qwen3_shapes.py`
# Not trained yet (configs/lisa/README.md); tests/models/test_qwen3_vl.py trains it 2 steps.
_base_ = ['./lisa_tiny_shapes.py', '../_base_/models/tiny_qwen3-vl_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
