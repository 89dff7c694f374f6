# Evaluate the released LISA-7B-v1 on ReasonSeg as LISA validates: teacher-forced answer
# "[SEG].", LISA's fixed prompts, gIoU / cIoU overall and per short / long query.
# 1. Convert (once): python tools/model_converters/lisa_to_lisakit.py LISA-7B-v1 \
#        data/lisa/LISA-7B-v1 --vision-tower clip-vit-large-patch14
# 2. Evaluate val: python tools/test.py THIS_CONFIG data/lisa/LISA-7B-v1/lisakit_checkpoint.pth
#    test split:  ... --cfg-options test_dataloader.dataset.split=test
#    other paths: the converted folder also holds lisakit_config.py (this config with its
#    absolute paths); or override model.backbone.pretrained / .tokenizer,
#    model.sam_encoder.checkpoint, model.head.checkpoint, the TokenizeConversation tokenizer
#    and test_dataloader.dataset.data_root with --cfg-options.
# Paper (LISA Table 1, not measured here): see docs/model_zoo.md. LISA's README warns that the
# v1 models were trained on train+val, so val numbers are not held-out numbers.
_base_ = [
    '../_base_/models/lisa_llava-v1_sam-vit-h.py',
    '../_base_/datasets/reasonseg.py',
    '../_base_/default_runtime.py',
]
lisa_dir = 'data/lisa/LISA-7B-v1'
data_root = 'data/reason_seg/ReasonSeg'
tokenizer = lisa_dir + '/tokenizer'
model = dict(
    backbone=dict(tokenizer=tokenizer, pretrained=lisa_dir + '/llava'),
    sam_encoder=dict(checkpoint=lisa_dir + '/sam.pth'),
    head=dict(checkpoint=lisa_dir + '/sam.pth'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=1024),
    dict(type='CLIPPreprocess', size=224),
    dict(
        type='TokenizeConversation',
        tokenizer=tokenizer,
        template='llava_v1',
        max_length=512,
        seg_token='[SEG]',
    ),
    dict(type='PackLISAInputs'),
]
val_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, split='val', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# Evaluation only: no training loop; lean checkpoints are completed from the built model.
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='LeanCheckpointHook')]
