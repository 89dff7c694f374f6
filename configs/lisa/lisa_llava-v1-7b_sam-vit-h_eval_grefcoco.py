# Evaluate the released LISA-7B-v1 on gRefCOCO (unc) val in LISA's merged mode,
# teacher-forced: "What is {sentence} in this image? Please output segmentation mask." ->
# "[SEG].", one mask per expression compared with the union of its targets (all zero for
# a no-target expression). GRefCOCOMetric: gIoU / cIoU (a no-target expression scores 1
# when the predicted mask is empty, else 0), N-acc and T-acc (LISA has no rejection
# token: an empty mask is its "no such object").
#   python tools/test.py THIS_CONFIG data/lisa/LISA-7B-v1/lisakit_checkpoint.pth
#   testA / testB:  --cfg-options test_dataloader.dataset.split=testA
#   data folder:    --cfg-options test_dataloader.dataset.data_root=/path/refer_seg
# The converted folder comes from tools/model_converters/lisa_to_lisakit.py (see
# docs/model_zoo.md).
_base_ = [
    '../_base_/models/lisa_llava-v1_sam-vit-h.py',
    '../_base_/datasets/grefcoco.py',
    '../_base_/default_runtime.py',
]
lisa_dir = 'data/lisa/LISA-7B-v1'
data_root = 'data/refer_seg'
tokenizer = lisa_dir + '/tokenizer'
model = dict(
    backbone=dict(tokenizer=tokenizer, pretrained=lisa_dir + '/llava'),
    sam_encoder=dict(checkpoint=lisa_dir + '/sam.pth'),
    head=dict(checkpoint=lisa_dir + '/sam.pth'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
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
