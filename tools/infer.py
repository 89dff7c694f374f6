"""Ask a question about an image: ``python tools/infer.py CONFIG CHECKPOINT IMAGE "QUESTION"``.

Prints the answer the model writes and SAM's predicted IoU of each mask, and saves one mask
PNG per ``<SEG>`` (0 / 255) and an overlay PNG (masks in red over the image) at the image's
size under ``--out``. When the model rejects the question (``[REJ]``, or no mask) it prints
"no matching object" and writes no file. ``--precision bf16`` / ``--load-in-4bit`` run big
models in less memory.
"""

import argparse
import os
import os.path as osp
import sys

import numpy as np
from mmengine.config import DictAction
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lisakit.apis import PRECISIONS, inference_model, init_model  # noqa: E402
from lisakit.apis.inference import NO_MATCH_TEXT  # noqa: E402
from lisakit.datasets.transforms import LoadImageFromFile  # noqa: E402
from lisakit.utils.cli import config_with_options, run_cli  # noqa: E402
from lisakit.visualization import overlay_masks  # noqa: E402

MASK_VALUE = 255


def main() -> int:
    parser = argparse.ArgumentParser(description='Segment an image from a question')
    parser.add_argument('config', help='config file, or an export folder (checkpoint: "-")')
    parser.add_argument('checkpoint', help='checkpoint file, or "-" for none')
    parser.add_argument('image')
    parser.add_argument('question')
    parser.add_argument('--out', default='infer_out', help='folder for the PNGs')
    parser.add_argument('--answer', help='teacher-force this answer instead of generating')
    parser.add_argument(
        '--max-new-tokens', type=int, help="most tokens to write (default: the config's, 512)"
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', choices=sorted(PRECISIONS), help='default: the config')
    quant = parser.add_mutually_exclusive_group()
    quant.add_argument('--load-in-4bit', action='store_true', help='NF4 language model')
    quant.add_argument('--load-in-8bit', action='store_true', help='LLM.int8 language model')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='config edits (config files only)'
    )
    args = parser.parse_args()
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'Image {args.image} does not exist; pass a PNG or JPEG file.')
    checkpoint = None if args.checkpoint == '-' else args.checkpoint
    model = init_model(
        config_with_options(args.config, args.cfg_options),
        checkpoint,
        args.device,
        precision=args.precision,
        load_in_4bit=args.load_in_4bit,
        load_in_8bit=args.load_in_8bit,
    )
    sample = inference_model(
        model, args.image, args.question, answer=args.answer, max_new_tokens=args.max_new_tokens
    )
    image = LoadImageFromFile()(dict(img_path=args.image))['img']
    masks = sample.pred_masks.numpy()
    print(sample.pred_text)
    if sample.pred_rejected:  # the model found no matching object: no mask, no files
        print(NO_MATCH_TEXT)
        return 0
    scores = ', '.join(f'{s:.3f}' for s in sample.pred_iou_scores.tolist())
    print(f'predicted IoU (SAM): [{scores}]')
    os.makedirs(args.out, exist_ok=True)
    stem = osp.splitext(osp.basename(args.image))[0]
    for k, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8) * MASK_VALUE).save(
            osp.join(args.out, f'{stem}_mask_{k}.png')
        )
    Image.fromarray(overlay_masks(image, masks)).save(osp.join(args.out, f'{stem}_overlay.png'))
    print(f'{len(masks)} mask(s) written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
