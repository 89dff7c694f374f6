# The refCOCO family from the REFER release (layout in docs/datasets.md): train on
# refcoco (unc) train, evaluate on val with LISA's prompt and answer "<SEG>." and report
# cIoU (the paper's refCOCO metric; gIoU comes along). Other splits / datasets:
#   --cfg-options test_dataloader.dataset.split=testA   (val, testA, testB; test for refcocog)
#   refcoco+.py / refcocog.py (umd) inherit from this file; refclef: set dataset='refclef'.
# SAM's input size must match the model (1024); the text and CLIP settings are the
# backbone's (model.backbone.processor).
dataset_type = 'RefCOCODataset'
data_root = 'data/refer_seg'
ref_dataset = 'refcoco'
split_by = 'unc'
sam_img_size = 1024
# masks per training sample, one conversation turn (and one <SEG>) each; LISA uses 3
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
        dataset=ref_dataset,
        split_by=split_by,
        split='train',
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
        dataset=ref_dataset,
        split_by=split_by,
        split='val',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric')
test_evaluator = val_evaluator
