# LISA's multi-GPU recipe with the 4-bit LoRA core: the QLoRA 7B ReasonSeg config trained with
# DeepSpeed ZeRO-2, as LISA trains (8 GPUs x batch 2 x 10 accumulation steps). bf16,
# the 10 accumulation steps and clipping at 1.0 come from schedule_lisa's optim_wrapper and
# become DeepSpeed's bf16 / gradient_accumulation_steps / gradient_clipping.
# Needs `pip install deepspeed` and GPUs; edit the local paths as in the base config:
#   bash tools/dist_train.sh \
#       configs/lisa/lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10-zero2_reasonseg.py 8
_base_ = [
    './lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py',
    '../_base_/runtimes/deepspeed_zero2.py',
]
