# PyTorch FSDP (torch-native, no extra package) through mmengine's FlexibleRunner: weights,
# gradients and optimizer states are sharded across the ranks (ZeRO-3-like). For models in
# floating point (FSDP does not shard bitsandbytes 4-bit weights here; use ZeRO-2 for QLoRA).
#
# bf16 comes from `optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')`
# (mmengine then uses FSDP's sharded grad scaler); gradient accumulation from
# `optim_wrapper.accumulative_counts`. Clipping: mmengine 0.10.7 clips with
# torch.nn.utils.clip_grad_norm_, which under FSDP sees only this rank's shard of each
# gradient, so `clip_grad` bounds per-rank shard norms, not the global norm.
# Runs on CPU processes too (gloo; tools/train.py sets `device_id='cpu'`).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        # one FSDP unit per block of >= 1e7 parameters (LLaMA / CLIP / SAM blocks)
        auto_wrap_policy=dict(
            type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy', min_num_params=1e7
        ),
        # frozen and trained weights share the flat parameters of a unit
        use_orig_params=True,
        sharding_strategy='FULL_SHARD',
    ),
    # one full checkpoint, gathered and written by rank 0 (tools/test.py reads it)
    state_dict_cfg='full',
)
