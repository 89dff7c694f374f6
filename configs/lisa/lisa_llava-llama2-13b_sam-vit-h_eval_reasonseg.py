# Evaluate the released LISA-13B-llama2-v1 on ReasonSeg (same protocol as the 7B config):
#   python tools/model_converters/lisa_to_lisakit.py LISA-13B-llama2-v1 \
#       data/lisa/LISA-13B-llama2-v1 --vision-tower clip-vit-large-patch14 --config THIS_CONFIG
#   python tools/test.py THIS_CONFIG data/lisa/LISA-13B-llama2-v1/lisakit_checkpoint.pth
# The 13B architecture (hidden 5120, 40 layers, vocab 32003 with [SEG] = 32000) comes from the
# converted llava/ folder; only the paths differ from the 7B config.
_base_ = [
    '../_base_/models/lisa_llava-llama2-13b_sam-vit-h.py',
    '../_base_/datasets/reasonseg.py',
    '../_base_/runtimes/eval_only.py',
]
train_dataloader = None  # evaluation only
