"""Batched generation against one prompt at a time: wall time and equality.

``python tools/analysis_tools/generate_speed.py [CONFIG] [--num 8] [--max-new-tokens 32]``
builds the config's model (random weights unless the config loads some), takes ``--num``
samples of its val split, and times ``predict_generate`` on them as one left-padded batch
and as ``--num`` batches of one (the median of ``--repeats`` runs each, after a warm-up).
It prints both times, their ratio, and whether the batched answers and masks equal the
batch-1 ones. EOS is suppressed until ``--max-new-tokens`` (``min_new_tokens``), so every
prompt generates exactly that many tokens and both ways do the same work.
"""

import argparse
import copy
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from lisakit.registry import DATASETS, MODELS  # noqa: E402

DEFAULT_CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Batched vs batch-1 generation speed')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--num', type=int, default=8, help='prompts (batch size)')
    parser.add_argument('--max-new-tokens', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def _generate(model, batch: dict, max_new_tokens: int) -> tuple[float, list]:
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    start = time.perf_counter()
    samples = model.predict_generate(
        data['inputs'],
        data['data_samples'],
        dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens),
    )
    return time.perf_counter() - start, samples


def measure(model, items: list, max_new_tokens: int, repeats: int) -> dict:
    """Median seconds of one batch of ``items`` and of one batch per item; equality."""
    batch = pseudo_collate(items)
    singles = [pseudo_collate([item]) for item in items]
    _generate(model, singles[0], max_new_tokens)  # warm-up
    batched, one_by_one = [], []
    for _ in range(repeats):
        seconds, together = _generate(model, batch, max_new_tokens)
        batched.append(seconds)
        runs = [_generate(model, single, max_new_tokens) for single in singles]
        one_by_one.append(sum(seconds for seconds, _ in runs))
    alone = [samples[0] for _, samples in runs]
    equal = all(
        a.pred_text == b.pred_text and torch.equal(a.pred_masks, b.pred_masks)
        for a, b in zip(together, alone)
    )
    return dict(
        batched_s=statistics.median(batched),
        one_by_one_s=statistics.median(one_by_one),
        equal=equal,
    )


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model).eval()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    items = [dataset[i] for i in range(args.num)]
    with torch.no_grad():
        result = measure(model, items, args.max_new_tokens, args.repeats)
    ratio = result['one_by_one_s'] / result['batched_s']
    print(
        f'{args.num} prompts, {args.max_new_tokens} new tokens, '
        f'{torch.get_num_threads()} threads: batch {args.num} {result["batched_s"]:.3f} s, '
        f'{args.num} x batch 1 {result["one_by_one_s"]:.3f} s, speed-up {ratio:.2f}x, '
        f'equal answers and masks: {result["equal"]}'
    )
    return 0 if result['equal'] else 1


if __name__ == '__main__':
    sys.exit(main())
