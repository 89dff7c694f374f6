# gRefCOCO (generalized referring expressions: 0, 1 or many targets; layout in
# docs/datasets.md): train on grefcoco (unc) train, evaluate on val teacher-forced with
# LISA's prompt and answer "<SEG>." in LISA's merged mode (one mask per expression, the
# union of its targets; an all-zero mask for a no-target expression), scored by
# GRefCOCOMetric: gIoU / cIoU where a no-target expression scores 1 when nothing is
# predicted, N-acc, T-acc. Other splits:
#   --cfg-options test_dataloader.dataset.split=testA   (val, testA, testB)
# One <SEG> per target instead: grefcoco_per-object.py. In training a no-target
# expression is answered with a rejection text (REJECT_ANSWER_LIST, no <SEG>, no mask);
# reject_answers=None keeps LISA's "<SEG>" answer with an all-zero mask.
# SAM's input size must match the model (1024); the text and CLIP settings are the
# backbone's (model.backbone.processor).
dataset_type = 'GRefCOCODataset'
data_root = 'data/refer_seg'
sam_img_size = 1024
target_mode = 'merged'
# expressions per training sample, one conversation turn each; LISA uses 3
num_classes_per_sample = 1
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='PackLISAInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        target_mode=target_mode,
        num_classes_per_sample=num_classes_per_sample,
        # leave bad refs / images out with a logged count instead of stopping the run
        on_error='skip',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        target_mode=target_mode,
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='GRefCOCOMetric')
test_evaluator = val_evaluator
