"""Convert an original LLaVA-v1 model (e.g. LLaVA-Lightning-7B-v1-1, LISA's base) into a
Hugging Face LLaVA folder.

``python tools/model_converters/llava_v1_to_hf.py LLAVA_V1_DIR CLIP_DIR OUT_DIR``

LLAVA_V1_DIR is a local copy of the LLaVA-v1 model (``LlavaLlamaForCausalLM``: config.json
with ``mm_*`` keys, tokenizer files, ``model*.safetensors`` or ``pytorch_model*.bin``
shards); CLIP_DIR a local copy of its tower, ``openai/clip-vit-large-patch14``. OUT_DIR is
a linear-projector ``LlavaForConditionalGeneration`` folder with the tokenizer: set it as
``model.backbone.pretrained`` (``projector_type='linear'``), e.g. ``llava_path`` of
``configs/lisa/lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_8xb2-accum10-zero2_lisa-mix.py``.
"""

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from lisakit.models.converters import convert_llava_v1_checkpoint  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402


def main() -> int:
    """Parse the command line, convert, print the report; the exit status."""
    parser = argparse.ArgumentParser(
        description='Convert an original LLaVA-v1 model into a Hugging Face LLaVA folder'
    )
    parser.add_argument('llava_v1_dir', help='folder of the LLaVA-v1 model')
    parser.add_argument('clip_dir', help='local openai/clip-vit-large-patch14 folder')
    parser.add_argument('out_dir', help='output folder (Hugging Face LLaVA)')
    parser.add_argument(
        '--dtype', choices=['float32', 'bfloat16', 'float16'], help='default: as stored'
    )
    args = parser.parse_args()
    report = convert_llava_v1_checkpoint(
        args.llava_v1_dir, args.clip_dir, args.out_dir, dtype=args.dtype
    )
    print(report.summary())
    print(f'Hugging Face LLaVA folder written to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
