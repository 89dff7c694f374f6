# DeepSpeed ZeRO-2 through mmengine's FlexibleRunner, LISA's own multi-GPU set-up:
# optimizer states and gradients are partitioned across the ranks, weights replicated.
#
# Clipping, gradient accumulation and mixed precision stay in `optim_wrapper`, as for the
# other runners: tools/train.py (lisakit.engine.runtime.prepare_strategy) turns
# `clip_grad=dict(max_norm=...)`, `accumulative_counts` and `type='AmpOptimWrapper'` +
# `dtype='bfloat16'` into DeepSpeed's `gradient_clipping`, `gradient_accumulation_steps`
# and `bf16` keys and runs the optimizer through `DeepSpeedOptimWrapper`.
# `train_micro_batch_size_per_gpu` is `train_dataloader.batch_size` (set by mmengine).
# Needs `pip install deepspeed` (an optional dependency of lisakit; also runs on CPU).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=2e8,
        reduce_scatter=True,
        reduce_bucket_size=2e8,
        overlap_comm=True,
        contiguous_gradients=True,
    ),
    # Checkpoints hold only the trained weights (LoRA, <SEG> rows, neck, mask decoder);
    # frozen ones are rebuilt from the config, as with LeanCheckpointHook.
    exclude_frozen_parameters=True,
)
