"""Write a real-size, random-weight copy of a training recipe that runs without downloads.

Smoke-tests a recipe (its runner, strategy, hooks, memory and speed) before the weights
and data are on the machine: a randomly initialised LLaVA of ``--random-llava`` size goes
to ``OUT_DIR/llava`` (built on the GPU when there is one), generated ReasonSeg-format
samples whose queries fill the text to the processor's ``max_length`` go to
``OUT_DIR/data``, and ``OUT_DIR/<config name>_random.py`` is the recipe pointed at them
(random SAM, offline tokenizer with a LLaMA-sized vocabulary, no validation, a log line
and the peak memory every iteration, a checkpoint at the end). Train it as any config::

    python tools/analysis_tools/random_recipe.py \
        configs/lisa/lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10-zero2_reasonseg.py \
        --random-llava llava-1.5-7b --out-dir /tmp/l7-zero2 --iters 20
    bash tools/dist_train.sh \
        /tmp/l7-zero2/lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10-zero2_reasonseg_random.py 1
"""

import argparse
import copy
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from memory_report import LLAVA_PRESETS, model_config, synthetic_dataset  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Random-weight copy of a training recipe')
    parser.add_argument('config')
    parser.add_argument('--random-llava', choices=sorted(LLAVA_PRESETS), required=True)
    parser.add_argument('--out-dir', required=True, help='folder for weights, data and config')
    parser.add_argument(
        '--random-dir', help='folder of the random LLaVA, reused if written (default OUT_DIR/llava)'
    )
    parser.add_argument('--iters', type=int, default=20, help='training iterations to run')
    parser.add_argument(
        '--num-samples', type=int, default=0, help='generated samples (default: 2 x batch)'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def random_recipe(
    cfg: Config, preset: str, out_dir: str, iters: int, num_samples: int, llava_dir: str
) -> Config:
    """``cfg`` on random weights of ``preset`` size and generated data under ``out_dir``."""
    model, _ = model_config(cfg, preset, meta=False, random_dir=llava_dir)
    num = num_samples or 2 * cfg.train_dataloader.batch_size
    dataset = synthetic_dataset(cfg, model, osp.join(out_dir, 'data'), num)
    out = copy.deepcopy(cfg)
    out.model = model
    out.train_dataloader.dataset = dataset
    for split in ('val', 'test'):  # no validation: the run measures training
        for key in (f'{split}_dataloader', f'{split}_cfg', f'{split}_evaluator'):
            out[key] = None
    out.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    out.default_hooks.logger.interval = 1
    out.default_hooks.checkpoint.update(by_epoch=False, interval=iters, save_best=None)
    out.log_processor = dict(by_epoch=False)
    out.work_dir = osp.join(out_dir, 'work_dir')
    return out


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    os.makedirs(args.out_dir, exist_ok=True)
    llava_dir = args.random_dir or osp.join(args.out_dir, 'llava')
    out = random_recipe(
        cfg, args.random_llava, args.out_dir, args.iters, args.num_samples, llava_dir
    )
    name = osp.splitext(osp.basename(args.config))[0]
    path = osp.join(args.out_dir, f'{name}_random.py')
    out.dump(path)
    print(f'random-weight recipe written to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
