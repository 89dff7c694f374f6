# Evaluate the released LISA-13B-llama2-v1 on refCOCO (unc) val (same protocol as the 7B
# config; convert with tools/model_converters/lisa_to_lisakit.py into data/lisa/...):
#   python tools/test.py THIS_CONFIG data/lisa/LISA-13B-llama2-v1/lisakit_checkpoint.pth
_base_ = [
    '../_base_/models/lisa_llava-llama2-13b_sam-vit-h.py',
    '../_base_/datasets/refcoco.py',
    '../_base_/runtimes/eval_only.py',
]
tokenizer = 'data/lisa/LISA-13B-llama2-v1/tokenizer'
# LISA-v1's inputs: CLIP at 224 px, the llava_v1 template, 512 tokens, '[SEG]'
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
train_dataloader = None  # evaluation only
