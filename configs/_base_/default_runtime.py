default_scope = 'lisakit'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ReasonSegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook made crash-safe (docs/get_started.md, "When a run dies"):
    # keeps the latest epoch and the best val cIoU checkpoint (best files also hold
    # optimizer and scheduler state). Best-only (the seed's --save_best_only):
    # interval=-1, save_last=False. iter_interval=N also saves every N iterations inside
    # an epoch; a kill then loses at most N iterations (resume continues at the next one).
    checkpoint=dict(
        type='FullBestCheckpointHook',
        interval=1,
        max_keep_ckpts=1,
        save_best='cIoU',
        rule='greater',
        iter_interval=-1,
    ),
    # A NaN / Inf loss stops the run naming the iteration, losses and samples, before the
    # step reaches the weights; action='skip' skips such steps instead (counted, logged).
    invalid_loss=dict(type='InvalidLossHook', action='stop'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='ReasonSegVisualizationHook', draw=False),
)
custom_hooks = [
    dict(type='TrainingHistoryHook'),
    dict(type='EarlyStoppingHook', monitor='cIoU', rule='greater', patience=5, min_delta=0.001),
]
randomness = dict(seed=0)
# DDP: SAM's IoU head and extra mask tokens get no gradient (LISA uses mask token 0 only).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
