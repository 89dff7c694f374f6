# LISA on LLaVA-1.5-7B (4-bit NF4 LLM + LoRA, as lisa_llava-1.5-7b-qlora_sam-vit-h.py) with a
# SAM 2.1 Hiera-L mask head: the frozen Hiera + FPN encoder feeds its stride-16 embedding and
# its stride-4 / stride-8 maps to SAM 2's mask decoder (trained, with conv_s0 / conv_s1); the
# prompt encoder stays frozen. Local Hugging Face folder only (nothing downloads), e.g.
#   --cfg-options model.sam_encoder.pretrained=/path/sam2.1-hiera-large
# (the head takes its prompt encoder and mask decoder from the same folder).
# The data pipeline is SAM's (longest side 1024, SAM's mean / std, zero padding): SAM 2 uses
# the same mean / std; its own processor squashes images to 1024 x 1024 instead of padding.
_base_ = ['./lisa_llava-1.5-7b-qlora_sam-vit-h.py']
sam2_path = 'data/sam2.1-hiera-large'
model = dict(
    sam_encoder=dict(_delete_=True, type='SAM2ImageEncoder', pretrained=sam2_path),
    head=dict(
        _delete_=True,
        type='SAM2Head',  # its weights: sam_encoder.pretrained's (one SAM 2 path)
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
)
