"""Text-free baselines on a shapes split: how well can one do without reading the query?

``python tools/analysis_tools/shapes_baselines.py CONFIG [--split val]`` prints gIoU / cIoU
of: predicting every shape (the "segment every shape" baseline), one random shape, and an
empty mask, on the config's val (or test) dataset, by LISA's definitions.
"""

import argparse
import os.path as osp
import sys

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.evaluation.functional import giou_ciou  # noqa: E402
from lisakit.registry import DATASETS  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Text-free baselines on a shapes split')
    parser.add_argument('config', help='config with a ShapesReasonSegDataset')
    parser.add_argument('--split', choices=['val', 'test'], default='val')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random-shape baseline')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def baselines(dataset, seed: int = 0) -> dict:
    """gIoU / cIoU of text-free predictions over every sample of ``dataset``."""
    rng = np.random.default_rng(seed)
    gts, every, one, empty = [], [], [], []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        shapes = info['all_masks']  # (K, H, W)
        gts.append(info['gt_masks'][0])
        every.append(shapes.any(0))
        one.append(shapes[rng.integers(len(shapes))].astype(bool))
        empty.append(np.zeros_like(shapes[0], dtype=bool))
    return {
        'every shape': giou_ciou(every, gts),
        'one random shape': giou_ciou(one, gts),
        'empty mask': giou_ciou(empty, gts),
    }


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    loader = cfg.val_dataloader if args.split == 'val' else cfg.test_dataloader
    dataset = DATASETS.build(loader.dataset)
    print(f'{args.split} split: {len(dataset)} samples')
    print(f'{"baseline":<18} {"gIoU":>7} {"cIoU":>7}')
    for name, scores in baselines(dataset, args.seed).items():
        print(f'{name:<18} {scores["gIoU"]:7.4f} {scores["cIoU"]:7.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
