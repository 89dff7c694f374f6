# The 7B QLoRA recipe with Qwen2.5-VL-7B-Instruct as the VLM: the LLaVA-1.5 recipe
# (lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py: ReasonSeg drawn as LISA draws
# it, AdamW lr 3e-4, 100 warmup steps then linear decay, bf16 AMP, batch 2 x 10 accumulation,
# SAM ViT-H with its embedding cache) with only the backbone swapped
# (configs/_base_/models/qwen2.5-vl-7b-qlora_backbone.py): NF4 LLM, LoRA r 8 on the LLM's
# q/k/v/o only, <SEG> rows, gradient checkpointing, Qwen's chat template and dynamic-resolution
# images (256-576 image tokens), labels on each answer and its <|im_end|>.
# Local paths only (nothing downloads): ONE folder for model, tokenizer and image processor,
#   --cfg-options model.backbone.pretrained=/path/Qwen2.5-VL-7B-Instruct
# plus the SAM checkpoint and ReasonSeg paths of the LLaVA recipe.
_base_ = [
    './lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py',
    '../_base_/models/qwen2.5-vl-7b-qlora_backbone.py',
]
model = dict(backbone={{_base_.qwen_backbone}})
