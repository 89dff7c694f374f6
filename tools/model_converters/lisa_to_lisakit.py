"""Convert a released LISA model (e.g. ``xinlai/LISA-7B-v1``) into a lisakit model folder.

``python tools/model_converters/lisa_to_lisakit.py SRC_DIR OUT_DIR --vision-tower CLIP_DIR``

SRC_DIR is a local copy of the LISA model (``config.json``, tokenizer files and
``model*.safetensors`` or ``pytorch_model*.bin`` shards with their index); CLIP_DIR a local
copy of ``openai/clip-vit-large-patch14`` (LISA checkpoints do not contain the CLIP tower).
Prints how many keys were mapped and every dropped key with its reason. The result loads
with ``lisakit.apis.init_model(OUT_DIR)`` and evaluates with
``tools/test.py OUT_DIR/lisakit_config.py OUT_DIR/lisakit_checkpoint.pth``.
"""

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from lisakit.models.converters import convert_lisa_checkpoint  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402

DEFAULT_CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_llava-v1-7b_sam-vit-h_eval_reasonseg.py')


def main() -> int:
    parser = argparse.ArgumentParser(description='Convert an official LISA checkpoint')
    parser.add_argument('src_dir', help='folder of the released LISA model')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--vision-tower', help='local openai/clip-vit-large-patch14 folder (CLIP ViT-L/14-224)'
    )
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='lisakit config with the SAM / neck sizes and the data pipeline to write',
    )
    parser.add_argument(
        '--dtype', choices=['float32', 'bfloat16', 'float16'], help='default: as stored'
    )
    args = parser.parse_args()
    report = convert_lisa_checkpoint(
        args.src_dir, args.out_dir, args.config, vision_tower=args.vision_tower, dtype=args.dtype
    )
    print(report.summary())
    print(f'converted model written to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
