"""Data-pipeline throughput and the cost of the backbone's processor, per batch.

``python tools/analysis_tools/benchmark_pipeline.py --num-samples 64 --workers 0 2``

Two presets (``--presets``):

- ``lisa7b``: LISA-7B-like sizes: generated 1024 x 768 ReasonSeg-format files (JPEG + JSON),
  the neutral pipeline (load + EXIF, LISA mask rasterization, SAM 1024 resize / normalize /
  pad, packing) with 3 queries per image, batch 2, and LISA's processor: CLIP ViT-L/14 at
  224 px (256 features), ``llava_v1``, LISA's exact text encoding on the LLaMA-like
  sentencepiece tokenizer of ``tests/data/lisa_fixtures`` (``[SEG]``, ``<im_start>`` /
  ``<im_end>``), one sequence per query, ``max_length=512``.
- ``tiny``: the demo (``configs/lisa/lisa_tiny_shapes.py``): generated 64 px shapes, batch 8,
  the word tokenizer, ``plain`` multi-turn text, 32 px CLIP.

For each preset it prints the processor's time in the data preprocessor (main process,
ms per batch), then for each number of DataLoader workers the time per batch of the old
layout (the processor in the workers, as ``TokenizeConversation`` / ``CLIPPreprocess`` ran)
and of the new one (neutral samples from the workers, the processor in the data
preprocessor), and the new layout's samples/s (each the best of ``--repeats`` alternating passes).
"""

from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from lisakit.datasets.synthetic import (  # noqa: E402
    DEFAULT_IMAGE_SIZE,
    DEFAULT_QUERY,
    write_reasonseg_folder,
)
from lisakit.datasets.templates import ANSWER_LIST, SHORT_QUESTION_LIST  # noqa: E402
from lisakit.registry import DATASETS, MODELS  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402
from lisakit.utils.constants import IMAGE_TOKEN  # noqa: E402

LISA_TOKENIZER = osp.join(REPO, 'tests', 'data', 'lisa_fixtures', 'tokenizer')
LISA_QUERIES = 3  # LISA's num_classes_per_sample
#: LISA-v1's processor (the facts LlavaBackbone reads from a LISA-7B config: CLIP ViT-L/14
#: at 224 px -> 256 features).
LISA7B_PROCESSOR = dict(
    type='LlavaProcessor',
    tokenizer=LISA_TOKENIZER,
    template='llava_v1',
    max_length=512,
    layout='per_query',
    seg_token='[SEG]',
    use_im_start_end=True,
    num_image_features=256,
    image_size=224,
)
#: The demo's processor (configs/_base_/models/lisa_tiny.py; 32 px CLIP, patch 8).
TINY_PROCESSOR = dict(
    type='LlavaProcessor',
    tokenizer=dict(type='WordTokenizer'),
    template='plain',
    max_text_length=64,
    layout='multi_turn',
    num_image_features=16,
    image_size=32,
)


class ThreeQueries:
    """LISA's training sample: ``LISA_QUERIES`` questions on one image, one mask each."""

    def __call__(self, results: dict) -> dict:
        questions = [
            SHORT_QUESTION_LIST[k].format(class_name=f'{DEFAULT_QUERY} {k}')
            for k in range(LISA_QUERIES)
        ]  # datasets keep <image> in the first question only
        questions[1:] = [q.replace(f'{IMAGE_TOKEN}\n', '') for q in questions[1:]]
        results['conversations'] = [
            dict(question=q, answer=a) for q, a in zip(questions, ANSWER_LIST)
        ]
        results['gt_masks'] = results['gt_masks'][[0] * LISA_QUERIES]
        return results


class ProcessInWorker:
    """The old layout: the processor runs on each packed sample in the dataloader worker."""

    def __init__(self, processor) -> None:
        self.processor = processor

    def __call__(self, packed: dict) -> dict:
        sample = packed['data_samples']
        out = self.processor(packed['inputs']['img'], sample.conversations, sample.query_type)
        packed['inputs'] = dict(
            sam_image=packed['inputs']['sam_image'],
            pixel_values=out['vision']['pixel_values'],
            input_ids=torch.cat(out['input_ids']),  # (sum L_k,): collate cannot take lists
            labels=torch.cat(out['labels']),
            seq_lengths=torch.tensor([len(x) for x in out['input_ids']]),
        )
        return packed


def old_collate(batch: dict, pad: int) -> dict:
    """What the old data preprocessor did on already tokenized samples: flatten, pad, stack."""
    inputs = batch['inputs']
    splits = zip(inputs['input_ids'], inputs['labels'], inputs['seq_lengths'])
    ids, labels = [], []
    for x, y, n in splits:
        ids += x.split(n.tolist())
        labels += y.split(n.tolist())
    return dict(
        input_ids=pad_sequence(ids, batch_first=True, padding_value=pad),
        labels=pad_sequence(labels, batch_first=True, padding_value=-100),
        pixel_values=torch.stack(list(inputs['pixel_values'])),
        sam_images=torch.stack(list(inputs['sam_image'])),
    )


def lisa7b_dataset(root: str, num_samples: int, extra: list):
    write_reasonseg_folder(root, 'val', num_samples, DEFAULT_IMAGE_SIZE)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadReasonSegAnnotation'),
        dict(type='SAMPreprocess', img_size=1024),
        ThreeQueries(),
        dict(type='PackLISAInputs'),
    ] + extra
    cfg = dict(type='ReasonSegDataset', data_root=root, split='val', test_mode=True)
    return DATASETS.build(dict(cfg, pipeline=pipeline))


def tiny_dataset(root: str, num_samples: int, extra: list):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='SAMPreprocess', img_size=64),
        dict(type='PackLISAInputs'),
    ] + extra
    cfg = dict(type='ShapesReasonSegDataset', split='val', num_samples=num_samples, seed=0)
    return DATASETS.build(dict(cfg, pipeline=pipeline))


PRESETS = {
    'lisa7b': (lisa7b_dataset, LISA7B_PROCESSOR, 2),
    'tiny': (tiny_dataset, TINY_PROCESSOR, 8),
}


def ms_per_batch(loader: DataLoader, step) -> float:
    start, batches = time.perf_counter(), 0
    for batch in loader:
        step(batch)
        batches += 1
    return 1000 * (time.perf_counter() - start) / batches


def processor_ms(preprocessor, batches: list) -> float:
    """Median time of the data preprocessor (the processor on every sample, padding)."""
    times = []
    for batch in batches:
        start = time.perf_counter()
        preprocessor(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run_preset(name: str, root: str, args) -> None:
    make, processor_cfg, batch_size = PRESETS[name]
    preprocessor = MODELS.build(dict(type='LISADataPreprocessor', processor=processor_cfg))
    processor = preprocessor.processor
    new = make(root, args.num_samples, [])
    old = Compose(list(new.pipeline.transforms) + [ProcessInWorker(processor)])
    batches = [
        pseudo_collate([new[i] for i in range(k, min(k + batch_size, len(new)))])
        for k in range(0, len(new), batch_size)
    ]
    preprocessor(batches[0])  # warm up
    seqs = preprocessor(batches[0])['inputs']['input_ids'].shape
    print(
        f'[{name}] processor in the data preprocessor: {processor_ms(preprocessor, batches):.2f} '
        f'ms/batch (batch {batch_size}, {seqs[0]} sequences of up to {seqs[1]} tokens)'
    )
    old_dataset = make(root, args.num_samples, [])
    old_dataset.pipeline = old
    for workers in args.workers:
        kwargs = dict(batch_size=batch_size, num_workers=workers, collate_fn=pseudo_collate)
        t_old, t_new = float('inf'), float('inf')
        for _ in range(args.repeats):  # alternate the layouts; keep each one's best pass
            t_old = min(
                t_old,
                ms_per_batch(
                    DataLoader(old_dataset, **kwargs),
                    lambda b: old_collate(b, processor.pad_token_id),
                ),
            )
            t_new = min(t_new, ms_per_batch(DataLoader(new, **kwargs), preprocessor))
        print(
            f'[{name}] {workers} workers: {1000 * batch_size / t_new:.1f} samples/s '
            f'(new, processor in the data preprocessor: {t_new:.1f} ms/batch; old, processor '
            f'in the workers: {t_old:.1f} ms/batch)'
        )


def main() -> int:
    parser = argparse.ArgumentParser(description='Data-pipeline and processor throughput')
    parser.add_argument('--num-samples', type=int, default=64)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    parser.add_argument('--repeats', type=int, default=2, help='passes per layout (best kept)')
    parser.add_argument('--presets', nargs='+', choices=sorted(PRESETS), default=['lisa7b', 'tiny'])
    args = parser.parse_args()
    init_default_scope('lisakit')
    torch.set_num_threads(1)
    for name in args.presets:
        with tempfile.TemporaryDirectory() as root:
            run_preset(name, root, args)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
