"""Export a lisakit checkpoint to a Hugging Face-style folder.

``python tools/model_converters/export.py CONFIG CHECKPOINT OUT_DIR`` writes the peft adapter
and the other trainable weights as safetensors; ``--merge`` folds LoRA and the ``<SEG>`` rows
into an unquantized base and saves a full LLaVA folder. Both write a model card
(``README.md``) whose metrics come from ``--metrics FILE`` (e.g. ``tools/test.py --out``) or
else from the ``training_history.json`` next to the checkpoint (the validation row of the
checkpoint's epoch). Load either with ``lisakit.apis.init_model(OUT_DIR)``.
"""

import argparse
import json
import os.path as osp
import re
import sys
from typing import Optional

import torch
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.apis import export_model, init_model  # noqa: E402
from lisakit.apis.export import export_merged  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402

#: ``epoch_N.pth`` / ``best_cIoU_epoch_N.pth``: the checkpoint's epoch.
EPOCH_IN_NAME = re.compile(r'epoch_(\d+)')


def card_metrics(checkpoint: str, metrics_file: Optional[str]) -> tuple[Optional[dict], str]:
    """Metrics for the model card and where they come from: ``metrics_file`` (JSON), or
    the validation row of the checkpoint's epoch in the ``training_history.json`` beside
    it, or ``None``."""
    if metrics_file:
        with open(metrics_file, encoding='utf-8') as f:
            return json.load(f), f'From `{metrics_file}`.'
    history_file = osp.join(osp.dirname(osp.abspath(checkpoint)), 'training_history.json')
    match = EPOCH_IN_NAME.search(osp.basename(checkpoint))
    if not (match and osp.isfile(history_file)):
        return None, ''
    with open(history_file, encoding='utf-8') as f:
        rows = [r for r in json.load(f).get('val', []) if r['epoch'] == int(match.group(1))]
    if not rows:
        return None, ''
    metrics = {f'val {k}' if k != 'epoch' else k: v for k, v in rows[-1].items() if v is not None}
    return metrics, "Validation during training (`training_history.json`, the checkpoint's epoch)."


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
    parser.add_argument('--metrics', help='JSON of metrics for the model card')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config edits')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.merge:
        cfg.model.backbone.quantization = None  # merge into full-precision base weights
    model = init_model(cfg, args.checkpoint)
    if args.dtype:
        for param in model.parameters():
            if param.requires_grad and param.is_floating_point():
                param.data = param.data.to(getattr(torch, args.dtype))
    export = export_merged if args.merge else export_model
    metrics, note = card_metrics(args.checkpoint, args.metrics)
    counts = export(
        model, cfg, args.out_dir, metrics=metrics, source=args.checkpoint, metrics_note=note
    )
    print(
        f'exported {counts["adapter"]} adapter tensors and {counts["lisakit"]} other '
        f'tensors to {args.out_dir}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
