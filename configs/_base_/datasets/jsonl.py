# Your own data in lisakit's JSON-lines format (docs/datasets.md, "Your own data"):
#   data/my_dataset/{train,val}.jsonl, images under images/, mask PNGs under masks/.
# Train on train.jsonl; evaluate val.jsonl teacher-forced on its own answers (gIoU / cIoU).
# SAM's input size must match the model (1024); the text and CLIP settings are the
# backbone's (model.backbone.processor).
dataset_type = 'JSONLDataset'
data_root = 'data/my_dataset'
sam_img_size = 1024
# at most this many turns (LISA: one mask each) per sample; None keeps every line whole
num_classes_per_sample = None
jsonl = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='images', mask_path='masks'),
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # png_ignore_value=255 if your mask PNGs mark ignored pixels with 255 (objects 1)
    dict(type='LoadMaskAnnotations', png_ignore_value=None),
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
        **jsonl,
        ann_file='train.jsonl',
        num_classes_per_sample=num_classes_per_sample,
        # 'skip': bad lines / samples are left out with a logged count; 'raise' stops at the
        # first one naming file:line (run tools/misc/check_dataset.py first to list them all)
        on_error='skip',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**jsonl, ann_file='val.jsonl', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric')
test_evaluator = val_evaluator
