# Your own data in lisakit's JSON-lines format (docs/datasets.md, "Your own data"):
#   data/my_dataset/{train,val}.jsonl, images under images/, mask PNGs under masks/.
# Train on train.jsonl; evaluate val.jsonl teacher-forced on its own answers (gIoU / cIoU).
# The image sizes must match the model: SAM 1024, CLIP 336 for LLaVA-1.5 (224 for LISA v1).
dataset_type = 'JSONLDataset'
data_root = 'data/my_dataset'
tokenizer = 'data/llava-1.5-7b-hf'
sam_img_size = 1024
clip_size = 336
# LISA's length limit: 512 tokens once CLIP ViT-L/14 at 224 px (256 features) is expanded,
# i.e. 257 text tokens; the same text room at 336 px (576 features) is 832.
num_image_features = (clip_size // 14) ** 2
max_length = 256 + num_image_features
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
    dict(type='CLIPPreprocess', size=clip_size),
    dict(
        type='TokenizeConversation',
        tokenizer=tokenizer,
        template='llava_v1',
        max_length=max_length,
        num_image_features=num_image_features,
        layout='per_query',  # LISA: one one-turn sequence per query
    ),
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
