# Constant learning rate (the seed's `--scheduler none`). AdamW, gradient clipping 1.0.
max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
