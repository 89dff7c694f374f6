"""Data-pipeline throughput on generated ReasonSeg-format files (1024-px JPEGs + JSON).

``python tools/analysis_tools/benchmark_pipeline.py --num-samples 64 --workers 0 2``
prints samples/s of the full LISA pipeline (load + EXIF, mask rasterization, SAM 1024
resize / normalize / pad, CLIP 336 processor, conversation tokenization, packing) through a
PyTorch DataLoader with each number of workers.
"""

import argparse
import os.path as osp
import sys
import tempfile
import time

from torch.utils.data import DataLoader

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from lisakit.datasets.synthetic import DEFAULT_IMAGE_SIZE, write_reasonseg_folder  # noqa: E402
from lisakit.registry import DATASETS  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402

IMAGE_SIZE = DEFAULT_IMAGE_SIZE  # (H, W): the longest side is SAM's 1024
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=1024),
    dict(type='CLIPPreprocess', size=336),
    dict(
        type='TokenizeConversation',
        tokenizer=dict(type='WordTokenizer'),
        template='llava_v1',
        max_length=832,  # LISA's 257 text tokens next to 576 image features (336 px)
        num_image_features=576,
    ),
    dict(type='PackLISAInputs'),
]


def throughput(dataset, workers: int, batch_size: int) -> float:
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=pseudo_collate
    )
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch['data_samples'])
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description='Data-pipeline throughput')
    parser.add_argument('--num-samples', type=int, default=64)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    parser.add_argument('--batch-size', type=int, default=2)
    args = parser.parse_args()
    init_default_scope('lisakit')
    with tempfile.TemporaryDirectory() as root:
        write_reasonseg_folder(root, 'val', args.num_samples, IMAGE_SIZE)
        dataset = DATASETS.build(
            dict(
                type='ReasonSegDataset',
                data_root=root,
                split='val',
                test_mode=True,
                pipeline=PIPELINE,
            )
        )
        dataset[0]  # warm up (tokenizer build, imports)
        for workers in args.workers:
            rate = throughput(dataset, workers, args.batch_size)
            print(
                f'{workers} workers: {rate:.1f} samples/s '
                f'({args.num_samples} samples of {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]})'
            )
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
