# The shapes demo with a tiny random Qwen2.5-VL as the VLM and a SAM 2 mask head
# (configs/_base_/models/lisa_tiny_qwen_sam2.py: the backbone of lisa_tiny-qwen_shapes.py, the
# head of lisa_tiny_sam2_shapes.py); same data and schedule: only the model config changes.
# `python tools/train.py configs/lisa/lisa_tiny-qwen_sam2_shapes.py`
# Choices measured on 2 CPU cores (configs/lisa/README.md): colour queries, one fixed
# answer "<SEG>." in training as in validation, lr 1e-3, 6 epochs (as the LLaVA demos).
_base_ = [
    '../_base_/models/lisa_tiny_qwen_sam2.py',
    '../_base_/datasets/shapes_reasonseg.py',
    '../_base_/schedules/schedule_cosine.py',
    '../_base_/default_runtime.py',
]
query_weights = dict(color=1.0)
train_dataloader = dict(
    dataset=dict(num_samples=2000, answers=['<SEG>.'], query_weights=query_weights)
)
val_dataloader = dict(dataset=dict(query_weights=query_weights))
test_dataloader = val_dataloader

max_epochs = 6
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True,
    )
]
train_cfg = dict(max_epochs=max_epochs)
