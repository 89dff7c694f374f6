# The Qwen2.5-VL-7B QLoRA recipe (lisa_qwen2.5-vl-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py)
# with a SAM 2.1 Hiera-L mask head (as configs/_base_/models/lisa_qwen2.5-vl-7b-qlora_sam2.1-
# hiera-l.py): frozen Hiera + FPN encoder (its embeddings cached on disk), trained SAM 2 mask
# decoder. Local Hugging Face folders only, e.g.
#   --cfg-options model.backbone.pretrained=/path/Qwen2.5-VL-7B-Instruct \
#       model.sam_encoder.pretrained=/path/sam2.1-hiera-large  (the head's weights too)
_base_ = ['./lisa_qwen2.5-vl-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py']
sam2_path = 'data/sam2.1-hiera-large'
model = dict(
    sam_encoder=dict(
        _delete_=True,
        type='SAM2ImageEncoder',
        pretrained=sam2_path,
        cache=dict(dir='work_dirs/sam2_cache'),
    ),
    head=dict(
        _delete_=True,
        type='SAM2Head',  # its weights: sam_encoder.pretrained's (one SAM 2 path)
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
)
