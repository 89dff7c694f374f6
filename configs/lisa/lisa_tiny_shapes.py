# The embedded demo: a tiny random LISA learns coloured-shapes reasoning segmentation
# on CPU. `python tools/train.py configs/lisa/lisa_tiny_shapes.py`
_base_ = [
    '../_base_/models/lisa_tiny.py',
    '../_base_/datasets/shapes_reasonseg.py',
    '../_base_/schedules/schedule_cosine.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(tokenizer={{_base_.tokenizer}}))
