"""Print a config after ``_base_`` inheritance and ``--cfg-options``, as mmseg's tool does.

``python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...] [--save-path FILE]``
prints the merged config (``--save-path`` also writes it, as a ``.py`` / ``.json`` /
``.yaml`` file by the suffix).
"""

import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.utils.cli import run_cli  # noqa: E402

SAVE_SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def main() -> int:
    parser = argparse.ArgumentParser(description='Print the merged config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config edits')
    parser.add_argument('--save-path', help=f'also write it here ({", ".join(SAVE_SUFFIXES)})')
    args = parser.parse_args()
    if args.save_path and not args.save_path.endswith(SAVE_SUFFIXES):
        raise ValueError(f'--save-path {args.save_path}: use a name ending in {SAVE_SUFFIXES}.')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'Config saved to {args.save_path}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
