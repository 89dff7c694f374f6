# ADE20K (SceneParsing, ADEChallengeData2016; layout in docs/datasets.md) as class-name
# queries, as LISA trains on it: label 0 ("other") is ignored, value v is class v - 1 of
# the 150 names. Training draws `num_classes_per_sample` classes present in each image
# (a "What is {class} ..."-style question, one <SEG> per class); evaluation asks every
# class present in a validation image on its own (gIoU / cIoU).
dataset_type = 'SemanticSegDataset'
data_root = 'data/ade20k'
tokenizer = 'data/llava-1.5-7b-hf'
sam_img_size = 1024
clip_size = 336
# LISA's length limit: 512 tokens once CLIP ViT-L/14 at 224 px (256 features) is expanded,
# i.e. 257 text tokens; the same text room at 336 px (576 features) is 832.
num_image_features = (clip_size // 14) ** 2
max_length = 256 + num_image_features
# masks per training sample, one conversation turn (and one <SEG>) each; LISA uses 3
num_classes_per_sample = 1
ade20k = dict(
    type=dataset_type,
    data_root=data_root,
    classes='ade20k',
    img_dir='images/{split}',
    seg_dir='annotations/{split}',
    reduce_zero_label=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
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
        **ade20k,
        split='training',
        num_classes_per_sample=num_classes_per_sample,
        # images without any labelled class are redrawn, as LISA does (logged, counted)
        on_error='skip',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**ade20k, split='validation', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric')
test_evaluator = val_evaluator
