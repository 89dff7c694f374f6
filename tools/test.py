"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--show-dir DIR]``."""

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lisakit.utils.runtime import prepare_cpu_distributed, setup_runtime  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a lisakit model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='file to dump the metrics to (JSON)')
    parser.add_argument('--show-dir', help='dir to write mask overlays to')
    parser.add_argument('--show', action='store_true', help='display overlays')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.batch_size=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Turn command-line flags into config edits."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint {args.checkpoint!r} not found.')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise KeyError('--show/--show-dir need default_hooks.visualization '
                           "(type='ReasonSegVisualizationHook') in the config.")
        hook.draw = True
        hook.show = args.show
        if args.show_dir:
            hook.test_out_dir = osp.abspath(args.show_dir)
    if args.out:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='DumpMetricsHook', out_file=osp.abspath(args.out))
        ]
    return cfg


def main() -> int:
    args = parse_args()
    setup_runtime()
    cfg = build_config(args)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.test()
    return 0


if __name__ == '__main__':
    sys.exit(main())
