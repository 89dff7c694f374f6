# The documented multi-GPU recipe, on the tiny model: the 4-bit NF4 LLM + LoRA core of
# lisa_tiny-qlora_shapes.py trained with DeepSpeed ZeRO-2 (LISA's set-up) in bf16, with
# gradient accumulation over 2 iterations and gradient clipping at 1.0 (from the schedule).
# Needs `pip install deepspeed`; runs on GPUs, and slowly on CPU processes (gloo):
#   bash tools/dist_train.sh configs/lisa/lisa_tiny-qlora_zero2_shapes.py 8
# The 7B recipe takes the same two lines on top of its own config (docs/distributed.md).
_base_ = ['./lisa_tiny-qlora_shapes.py', '../_base_/runtimes/deepspeed_zero2.py']
model = dict(backbone=dict(quantization=dict(compute_dtype='bfloat16')))
# DeepSpeed's bf16 / gradient_accumulation_steps / gradient_clipping come from here.
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', accumulative_counts=2)
