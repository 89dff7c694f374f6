# The embedded demo, logging to TensorBoard as well as to the work dir's JSON files:
# `pip install -e '.[tensorboard]'`, then
# `python tools/train.py configs/lisa/lisa_tiny_tensorboard_shapes.py` and
# `tensorboard --logdir work_dirs/lisa_tiny_tensorboard_shapes`. The training-history rows
# (train / val loss, CE, BCE, Dice, cIoU, gIoU per epoch, benchmarks) appear under
# `history/`, next to mmengine's per-iteration logs. W&B or MLflow: add
# dict(type='WandbVisBackend') or dict(type='MLflowVisBackend') to vis_backends instead.
_base_ = ['./lisa_tiny_shapes.py']

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(vis_backends=vis_backends)
