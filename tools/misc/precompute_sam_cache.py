"""Fill the SAM embedding cache of a config's model for one dataset split.

``python tools/misc/precompute_sam_cache.py CONFIG [--split train|val|test]
[--cfg-options model.sam_encoder.cache.dir=work_dirs/sam_cache ...]`` builds the model
and data as ``tools/train.py`` does (same seed, ``load_from`` checkpoint, data pipeline,
data preprocessor and autocast state), runs the SAM encoder over every image with a
progress bar and prints the cache's hits and misses. With ``--launcher pytorch`` each rank
fills its shard of the split. See docs/sam_cache.md.
"""

import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.amp import autocast

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.engine.runtime import (  # noqa: E402
    add_common_args,
    load_config,
    prepare_cpu_distributed,
    setup_runtime,
)
from lisakit.utils.cli import progress_bar, run_cli  # noqa: E402

LOADERS = dict(train='train_dataloader', val='val_dataloader', test='test_dataloader')
LOOPS = dict(val='val_cfg', test='test_cfg')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Pre-compute the SAM embedding cache')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=sorted(LOADERS), default='train')
    parser.add_argument(
        '--amp', action='store_true', help='as tools/train.py --amp (train split only)'
    )
    add_common_args(parser)
    return parser.parse_args()


def autocast_kwargs(cfg: Config, split: str, amp: bool) -> dict:
    """The autocast state the Runner's loop uses for ``split`` (it is part of the key)."""
    if split == 'train':
        wrapper = cfg.optim_wrapper
        enabled = amp or wrapper.get('type') == 'AmpOptimWrapper'
        dtype = wrapper.get('dtype')
        return dict(
            enabled=enabled, dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype
        )
    return dict(enabled=bool((cfg.get(LOOPS[split]) or {}).get('fp16', False)))


def precompute(runner: Runner, loader_cfg: dict, autocast_cfg: dict):
    """Run the SAM encoder of ``runner.model`` on every batch of ``loader_cfg``."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    encoder = model.sam_encoder
    loader = runner.build_dataloader(loader_cfg, seed=runner.seed)
    with torch.no_grad(), progress_bar(len(loader), enabled=is_main_process()) as bar:
        for data in loader:
            inputs = model.data_preprocessor(data, False)['inputs']
            with autocast(**autocast_cfg):
                encoder(inputs['sam_images'])  # (B, C, h, w), written to the cache
            if bar is not None:
                bar.update()
    return encoder.cache


def main() -> int:
    args = parse_args()
    setup_runtime()
    cfg = load_config(args)
    if not (cfg.model.get('sam_encoder') or {}).get('cache'):
        raise ValueError(
            f'{args.config}: model.sam_encoder.cache is not set; pass e.g. '
            '--cfg-options model.sam_encoder.cache.dir=work_dirs/sam_cache'
        )
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from'):
        runner.load_checkpoint(cfg.load_from)
    cache = precompute(runner, cfg[LOADERS[args.split]], autocast_kwargs(cfg, args.split, args.amp))
    print(f'SAM embedding cache ({args.split}): {cache.summary()}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
