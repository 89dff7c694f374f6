"""Process set-up shared by the tools: safe checkpoint loading and CPU DDP."""

from __future__ import annotations

import argparse
import os

import torch
from mmengine.config import Config, DictAction

from .checkpoint import UNSAFE_LOAD_ENV, register_checkpoint_loader
from .io import register_atomic_local_backend


def setup_runtime() -> None:
    """Safe checkpoint loading on torch >= 2.6 and atomic checkpoint writes."""
    register_checkpoint_loader()
    register_atomic_local_backend()


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


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``tools/train.py`` and ``tools/test.py``."""
    parser.add_argument('--work-dir', help='the dir to save logs, metrics and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_epochs=3',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load checkpoints with full unpickling (only for files you trust)',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the shared flags (launcher, overrides, work dir)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.unsafe_load:
        os.environ[UNSAFE_LOAD_ENV] = '1'
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = os.path.splitext(os.path.basename(args.config))[0]
        cfg.work_dir = os.path.join('./work_dirs', name)
    return cfg
