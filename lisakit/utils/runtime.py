"""Process set-up shared by the tools: safe checkpoint loading and CPU DDP."""

from __future__ import annotations

import os

import torch
from mmengine.config import Config

from .checkpoint import register_checkpoint_loader


def setup_runtime() -> None:
    """Load mmengine checkpoints safely on torch >= 2.6 (see ``register_checkpoint_loader``)."""
    register_checkpoint_loader()


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` train on CPU (gloo) when CUDA is absent.

    mmengine's launcher calls ``torch.cuda.set_device``; without CUDA we start the
    gloo process group ourselves and tell the DDP wrapper to use no device ids.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE'])
        )
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
