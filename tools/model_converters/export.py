"""Export a lisakit checkpoint to a Hugging Face-style folder (peft adapter + safetensors).

``python tools/model_converters/export.py CONFIG CHECKPOINT OUT_DIR``; load it back with
``lisakit.apis.init_model(OUT_DIR)``.
"""

import argparse
import os.path as osp
import sys

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.apis import export_model, init_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description='Export a lisakit checkpoint')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    model = init_model(cfg, args.checkpoint)
    counts = export_model(model, cfg, args.out_dir)
    print(
        f'exported {counts["adapter"]} adapter tensors and {counts["lisakit"]} other '
        f'tensors to {args.out_dir}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
