# LISA on Qwen2.5-VL-7B-Instruct (4-bit NF4 LLM + LoRA: qwen2.5-vl-7b-qlora_backbone.py) with
# a SAM 2.1 Hiera-L mask head: lisa_llava-1.5-7b-qlora_sam2.1-hiera-l.py with the VLM swapped.
# Local Hugging Face folders only, e.g.
#   --cfg-options model.backbone.pretrained=/path/Qwen2.5-VL-7B-Instruct \
#       model.sam_encoder.pretrained=/path/sam2.1-hiera-large  (the head's weights too)
_base_ = ['./lisa_llava-1.5-7b-qlora_sam2.1-hiera-l.py', './qwen2.5-vl-7b-qlora_backbone.py']
model = dict(backbone={{_base_.qwen_backbone}})
