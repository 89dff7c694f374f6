# Evaluate the released LISA-13B-llama2-v1 on gRefCOCO (unc) val in merged mode (same
# protocol as the 7B config; testA / testB with --cfg-options test_dataloader.dataset.split=
# testA; convert with tools/model_converters/lisa_to_lisakit.py into data/lisa/...):
#   python tools/test.py THIS_CONFIG data/lisa/LISA-13B-llama2-v1/lisakit_checkpoint.pth
_base_ = ['./lisa_llava-v1-7b_sam-vit-h_eval_grefcoco.py']
lisa_dir = 'data/lisa/LISA-13B-llama2-v1'
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
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
