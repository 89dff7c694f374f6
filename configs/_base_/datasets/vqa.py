# LLaVA-Instruct-150k visual question answering, LISA's VQA source (layout in
# docs/datasets.md): text-only samples, no masks; the model trains only its LM loss on
# them and skips SAM. Used inside LISA's mix (lisa_mix.py); there is no VQA evaluation,
# so a config training on VQA alone sets val_dataloader / val_cfg / val_evaluator itself.
# SAM's input size must match the model (1024); the text and CLIP settings are the
# backbone's (model.backbone.processor).
dataset_type = 'VQADataset'
data_root = 'data'
sam_img_size = 1024
vqa_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMaskAnnotations'),  # gt_masks (0, H, W): no mask to learn
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='PackLISAInputs'),
]
vqa = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='llava_dataset/llava_instruct_150k.json',
    data_prefix=dict(img_path='coco/train2017'),
    # bad items / missing images are left out with a logged count instead of stopping a run
    on_error='skip',
)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**vqa, pipeline=vqa_pipeline),
)
