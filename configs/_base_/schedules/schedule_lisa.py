# LISA's optimisation (train_ds.py): AdamW lr 3e-4, betas (0.9, 0.95), no weight decay,
# gradient clipping 1.0, bf16 mixed precision, 10 gradient-accumulation steps, linear
# warmup over 100 optimizer steps then linear decay to 0 over 5000 steps (10 x 500).
max_iters = 5000 * 10  # optimizer steps x accumulation (mmengine counts iterations)
warmup_iters = 100 * 10
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    accumulative_counts=10,
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
    ),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500 * 10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
