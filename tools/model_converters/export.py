"""Export a lisakit checkpoint to a Hugging Face-style folder.

``python tools/model_converters/export.py CONFIG CHECKPOINT OUT_DIR`` writes the peft adapter
and the other trainable weights as safetensors; ``--merge`` folds LoRA and the ``<SEG>`` rows
into an unquantized base and saves a full LLaVA folder. Load either with
``lisakit.apis.init_model(OUT_DIR)``.
"""

import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.apis import export_model, init_model  # noqa: E402
from lisakit.apis.export import export_merged  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description='Export a lisakit checkpoint')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir')
    parser.add_argument(
        '--merge',
        action='store_true',
        help='fold LoRA into an unquantized base and save a full model',
    )
    parser.add_argument(
        '--dtype',
        choices=['float32', 'bfloat16', 'float16'],
        help='store the exported trainable weights in this dtype',
    )
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.merge:
        cfg.model.backbone.quantization = None  # merge into full-precision base weights
    model = init_model(cfg, args.checkpoint)
    if args.dtype:
        for param in model.parameters():
            if param.requires_grad and param.is_floating_point():
                param.data = param.data.to(getattr(torch, args.dtype))
    export = export_merged if args.merge else export_model
    counts = export(model, cfg, args.out_dir)
    print(
        f'exported {counts["adapter"]} adapter tensors and {counts["lisakit"]} other '
        f'tensors to {args.out_dir}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
