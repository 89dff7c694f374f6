# The tiny demo sharded with PyTorch FSDP (weights, gradients and optimizer states split
# across the ranks) through mmengine's FlexibleRunner, with bf16 autocast:
#   bash tools/dist_train.sh configs/lisa/lisa_tiny_fsdp_shapes.py 8
# mmengine's AmpOptimWrapper needs a GPU; for CPU processes (gloo) inherit this config and
# set `optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=...)`.
_base_ = ['./lisa_tiny_shapes.py', '../_base_/runtimes/fsdp.py']
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
