"""Process set-up shared by the tools: safe checkpoint loading, CPU DDP, runner choice.

It lives in ``engine`` because it builds runners (``lisakit.utils`` sits below the engine
and imports none of it: see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import os
from typing import Optional, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import FlexibleRunner

from lisakit.registry import RUNNERS  # finds lisakit's FlexibleRunner before mmengine's
from lisakit.utils.checkpoint import UNSAFE_LOAD_ENV, register_checkpoint_loader
from lisakit.utils.io import register_atomic_local_backend

from .runner import Runner, register_deepspeed_optimizers

#: Runners that run on CPU processes (gloo): ``None`` is mmengine's ``Runner``. DeepSpeed
#: runs on CPU through its CPU accelerator (slow; for tests of the ZeRO set-up).
CPU_STRATEGIES = (None, 'DDPStrategy', 'FSDPStrategy', 'DeepSpeedStrategy')
#: Optimizer wrappers whose clipping / accumulation / precision DeepSpeed can take over.
DEEPSPEED_WRAPPER_SOURCES = ('OptimWrapper', 'AmpOptimWrapper', 'DeepSpeedOptimWrapper')


def setup_runtime() -> None:
    """Safe checkpoint loading on torch >= 2.6 and atomic checkpoint writes."""
    register_checkpoint_loader()
    register_atomic_local_backend()


def _strategy_type(cfg: Config) -> Optional[str]:
    """Name of the FlexibleRunner strategy the config asks for (``None`` for ``Runner``)."""
    if cfg.get('runner_type', 'Runner') != 'FlexibleRunner':
        return None
    strategy = cfg.get('strategy') or {}
    distributed = cfg.get('launcher', 'none') != 'none'
    kind = strategy.get('type', 'DDPStrategy' if distributed else 'SingleDeviceStrategy')
    return kind if isinstance(kind, str) else kind.__name__


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` train on CPU (gloo) when CUDA is absent.

    mmengine's launcher calls ``torch.cuda.set_device``; without CUDA we start the
    gloo process group ourselves and tell the model wrapper to use no CUDA device:
    ``model_wrapper_cfg`` for ``Runner``, ``strategy.model_wrapper`` for a
    ``FlexibleRunner`` with ``DDPStrategy`` or ``FSDPStrategy`` (DeepSpeed wraps the
    model itself and joins the gloo group).

    Raises:
        ValueError: If the config asks for a strategy that needs CUDA.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    strategy = _strategy_type(cfg)
    if strategy not in CPU_STRATEGIES:
        raise ValueError(
            f'strategy.type={strategy!r} needs CUDA; on CPU use the default Runner '
            f'(no runner_type) or a FlexibleRunner strategy in {list(CPU_STRATEGIES[1:])}.'
        )
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE'])
        )
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    if strategy == 'DeepSpeedStrategy':
        return
    if strategy is None:
        wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
        return
    cfg.strategy = dict(cfg.get('strategy') or dict(type=strategy))
    wrapper = dict(cfg.strategy.get('model_wrapper') or {})
    if strategy == 'FSDPStrategy':
        wrapper.update(type=wrapper.get('type', 'MMFullyShardedDataParallel'), device_id='cpu')
    else:
        wrapper.update(type=wrapper.get('type', 'MMDistributedDataParallel'), device_ids=None)
    cfg.strategy.model_wrapper = wrapper


def prepare_strategy(cfg: Config) -> None:
    """Complete a ``FlexibleRunner`` config; map the optimizer wrapper onto DeepSpeed.

    ``DDPStrategy`` without ``model_wrapper`` takes ``model_wrapper_cfg`` (as ``Runner``
    does), so LISA's ``find_unused_parameters=True`` holds under both runners.
    One place sets clipping, gradient accumulation and mixed precision for every
    runner: ``optim_wrapper`` (``clip_grad=dict(max_norm=...)``, ``accumulative_counts``,
    ``type='AmpOptimWrapper', dtype='bfloat16'``). DeepSpeed does these itself, so for
    ``DeepSpeedStrategy`` they move to the strategy's ``gradient_clipping``,
    ``gradient_accumulation_steps`` and ``bf16`` / ``fp16`` keys, and the wrapper becomes
    ``DeepSpeedOptimWrapper``. ``FSDPStrategy`` uses the wrappers as they are
    (``AmpOptimWrapper`` switches to FSDP's sharded grad scaler by itself).

    Raises:
        ImportError: If DeepSpeed is asked for but not installed.
        ValueError: If a strategy key contradicts the optimizer wrapper.
    """
    kind = _strategy_type(cfg)
    if kind == 'DDPStrategy' and not (cfg.get('strategy') or {}).get('model_wrapper'):
        cfg.strategy = dict(cfg.get('strategy') or dict(type=kind))
        cfg.strategy.model_wrapper = cfg.get('model_wrapper_cfg')
    if kind != 'DeepSpeedStrategy':
        return
    try:
        import deepspeed  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f'{cfg.filename}: strategy.type=DeepSpeedStrategy needs DeepSpeed, an optional '
            'dependency: `pip install deepspeed`.'
        ) from err
    register_deepspeed_optimizers()
    wrapper, strategy = cfg.optim_wrapper, cfg.strategy
    if wrapper.get('type', 'OptimWrapper') not in DEEPSPEED_WRAPPER_SOURCES:
        raise ValueError(
            f'optim_wrapper.type={wrapper.type!r} cannot run under DeepSpeedStrategy; '
            f'use one of {list(DEEPSPEED_WRAPPER_SOURCES)}.'
        )
    moved = deepspeed_config_keys(wrapper)
    for key, value in moved.items():
        if strategy.get(key) not in (None, value):
            raise ValueError(
                f'strategy.{key}={strategy[key]!r} contradicts the optim_wrapper setting '
                f'{value!r}; set it in one place (optim_wrapper).'
            )
        strategy[key] = value
    cfg.optim_wrapper = dict(type='DeepSpeedOptimWrapper', optimizer=wrapper.optimizer)
    for key in ('constructor', 'paramwise_cfg'):
        if key in wrapper:
            cfg.optim_wrapper[key] = wrapper[key]


def deepspeed_config_keys(wrapper: dict) -> dict:
    """DeepSpeed config keys equivalent to an mmengine optimizer-wrapper config.

    Args:
        wrapper: ``optim_wrapper`` config (``clip_grad``, ``accumulative_counts``,
            ``type='AmpOptimWrapper'`` with ``dtype``).

    Returns:
        ``gradient_clipping``, ``gradient_accumulation_steps`` and ``bf16`` / ``fp16``
        entries for the settings present.

    Raises:
        ValueError: For clipping DeepSpeed cannot do (by value, or a non-L2 norm).
    """
    out: dict = {}
    clip = dict(wrapper.get('clip_grad') or {})
    if clip:
        if clip.get('type', 'norm') != 'norm' or clip.get('norm_type', 2) != 2:
            raise ValueError(
                f'optim_wrapper.clip_grad={clip} under DeepSpeed: only clipping by the '
                'L2 norm is supported; use clip_grad=dict(max_norm=...).'
            )
        out['gradient_clipping'] = float(clip['max_norm'])
    counts = wrapper.get('accumulative_counts', 1)
    if counts != 1:
        out['gradient_accumulation_steps'] = int(counts)
    if wrapper.get('type') == 'AmpOptimWrapper':
        dtype = str(wrapper.get('dtype') or 'float16').replace('torch.', '')
        if dtype == 'bfloat16':
            out['bf16'] = dict(enabled=True)
        elif dtype == 'float16':
            out['fp16'] = dict(enabled=True, loss_scale=0)  # 0: dynamic loss scaling
    return out


def build_runner(cfg: Config) -> Union[Runner, FlexibleRunner]:
    """Build the runner the config asks for, ready for this process.

    mmengine's ``Runner`` by default; ``runner_type='FlexibleRunner'`` with a
    ``strategy`` (DDP, FSDP, DeepSpeed) otherwise. Applies :func:`prepare_strategy`
    and :func:`prepare_cpu_distributed` first.
    """
    prepare_strategy(cfg)
    prepare_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


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
