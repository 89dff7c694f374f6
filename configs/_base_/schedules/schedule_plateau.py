# Reduce the learning rate by `factor` when val cIoU stops improving for `patience`
# epochs (needs validation every epoch). AdamW, gradient clipping 1.0.
max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(
        type='ReduceOnPlateauLR',
        monitor='cIoU',
        rule='greater',
        factor=0.5,
        patience=3,
        by_epoch=True,
    ),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
