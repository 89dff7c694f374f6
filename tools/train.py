"""Train a lisakit model: ``python tools/train.py CONFIG [--work-dir DIR] [...]``."""

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
    parser = argparse.ArgumentParser(description='Train a lisakit model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest '
        'checkpoint in the work dir when no path is given',
    )
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    add_common_args(parser)
    return parser.parse_args()


def build_config(args: argparse.Namespace) -> Config:
    """Turn command-line flags into config edits."""
    cfg = load_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main() -> int:
    args = parse_args()
    setup_runtime()
    cfg = build_config(args)
    build_runner(cfg).train()
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
