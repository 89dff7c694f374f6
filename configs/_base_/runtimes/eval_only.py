# Evaluation only (released checkpoints): mmengine's runtime without a training loop;
# LeanCheckpointHook completes lean checkpoints from the built model. A config that uses it
# also sets `train_dataloader = None` (its dataset base defines one).
_base_ = ['../default_runtime.py']
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='LeanCheckpointHook')]
