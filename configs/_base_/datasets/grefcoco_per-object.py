# gRefCOCO in per-object mode: one <SEG> per target, ordered left to right (leftmost mask
# column, then topmost row), answers "Sure, they are <SEG>, <SEG> and <SEG>." in training
# and "<SEG>, <SEG> and <SEG>." in evaluation; GRefCOCOMetric adds the object-matched IoU
# (Hungarian matching of predicted to target masks).
_base_ = ['./grefcoco.py']
train_dataloader = dict(dataset=dict(target_mode='per_object'))
val_dataloader = dict(dataset=dict(target_mode='per_object'))
test_dataloader = val_dataloader
val_evaluator = dict(type='GRefCOCOMetric', object_iou=True)
test_evaluator = val_evaluator
