# LISA on Qwen2.5-VL-7B-Instruct (4-bit NF4 LLM + LoRA, <SEG> rows, gradient checkpointing:
# qwen2.5-vl-7b-qlora_backbone.py) with SAM ViT-H: lisa_llava-1.5-7b-qlora_sam-vit-h.py with
# the VLM swapped, nothing else. Local paths only (nothing downloads), e.g.
#   --cfg-options model.backbone.pretrained=/path/Qwen2.5-VL-7B-Instruct \
#       model.sam_encoder.checkpoint=/path/sam_vit_h_4b8939.pth  (the head's weights too)
_base_ = ['./lisa_llava-1.5-7b-qlora_sam-vit-h.py', './qwen2.5-vl-7b-qlora_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
