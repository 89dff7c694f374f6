"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--show-dir DIR]``."""

import argparse
import os.path as osp
import sys

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lisakit.engine.runtime import (  # noqa: E402
    add_common_args,
    build_runner,
    load_config,
    setup_runtime,
)
from lisakit.utils.cli import run_cli  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a lisakit model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (a folder for DeepSpeed)')
    parser.add_argument('--out', help='JSON file to write the metrics to')
    parser.add_argument('--show-dir', help='dir to write mask overlays to')
    parser.add_argument('--show', action='store_true', help='display overlays')
    add_common_args(parser)
    return parser.parse_args()


def build_config(args: argparse.Namespace) -> Config:
    """Turn command-line flags into config edits."""
    if not osp.exists(args.checkpoint):  # a file, or a folder for DeepSpeed / sharded FSDP
        raise FileNotFoundError(f'Checkpoint {args.checkpoint!r} not found.')
    cfg = load_config(args)
    cfg.load_from, cfg.resume = args.checkpoint, False
    if args.show or args.show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise KeyError(
                '--show/--show-dir need default_hooks.visualization '
                "(type='ReasonSegVisualizationHook') in the config."
            )
        hook.draw, hook.show = True, args.show
        if args.show_dir:
            hook.test_out_dir = osp.abspath(args.show_dir)
    if args.out:
        out_hook = dict(type='DumpMetricsHook', out_file=osp.abspath(args.out))
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [out_hook]
    return cfg


def main() -> int:
    args = parse_args()
    setup_runtime()
    cfg = build_config(args)
    build_runner(cfg).test()
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
