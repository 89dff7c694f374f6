# LISA-13B-llama2-v1 as released: the LISA-7B-v1 layout (lisa_llava-v1-7b_sam-vit-h.py) with
# the converted 13B folder; its architecture (hidden 5120, 40 layers, vocab 32003 with
# [SEG] = 32000) comes from the folder's llava/config.json. Convert with
#   python tools/model_converters/lisa_to_lisakit.py LISA-13B-llama2-v1 \
#       data/lisa/LISA-13B-llama2-v1 --vision-tower CLIP_DIR
_base_ = ['./lisa_llava-v1-7b_sam-vit-h.py']
lisa_dir = 'data/lisa/LISA-13B-llama2-v1'
model = dict(
    backbone=dict(pretrained=lisa_dir + '/llava'),
    sam_encoder=dict(checkpoint=lisa_dir + '/sam.pth'),  # the head's weights too
)
