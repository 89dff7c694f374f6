# LLaVA-Instruct-150k visual question answering, LISA's VQA source (layout in
# docs/datasets.md): text-only samples, no masks; the model trains only its LM loss on
# them and skips SAM. Used inside LISA's mix (lisa_mix.py); there is no VQA evaluation,
# so a config training on VQA alone sets val_dataloader / val_cfg / val_evaluator itself.
# The image sizes must match the model: SAM 1024, CLIP 336 for LLaVA-1.5 (224 for LISA v1).
dataset_type = 'VQADataset'
data_root = 'data'
tokenizer = 'data/llava-1.5-7b-hf'
sam_img_size = 1024
clip_size = 336
# LISA's length limit: 512 tokens once CLIP ViT-L/14 at 224 px (256 features) is expanded,
# i.e. 257 text tokens; the same text room at 336 px (576 features) is 832.
num_image_features = (clip_size // 14) ** 2
max_length = 256 + num_image_features
vqa_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMaskAnnotations'),  # gt_masks (0, H, W): no mask to learn
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
