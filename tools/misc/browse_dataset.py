"""Render dataset samples with their target masks and conversation, as mmseg's
``browse_dataset.py`` does: ``python tools/misc/browse_dataset.py CONFIG
[--split train|val|test] [--output-dir DIR] [--max-samples N] [--cfg-options ...]``.

Each sample is written to ``DIR/{index}.png``: the image, next to it the image with every
target mask in its own colour (ignored pixels, 255, in grey) and, below them, the
conversation (question and answer of each turn) and the sample's file. Only the loading
steps of the pipeline run (the ones named ``Load*``), so what is drawn is what the dataset
reads, before resizing.
"""

import argparse
import copy
import os
import os.path as osp
import sys
import textwrap

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.registry import DATASETS  # noqa: E402
from lisakit.utils.cli import progress_bar, run_cli  # noqa: E402
from lisakit.utils.constants import IGNORE_INDEX  # noqa: E402

LOADERS = dict(train='train_dataloader', val='val_dataloader', test='test_dataloader')
#: Mask colours (RGB), cycled; ignored pixels are grey.
PALETTE = ((230, 60, 60), (60, 200, 80), (70, 110, 240), (240, 200, 40), (190, 80, 220))
IGNORE_COLOR = (128, 128, 128)
MASK_ALPHA = 0.5
#: The two panels are scaled so their longer side is this many pixels (small images grow).
DISPLAY_SIDE = 768
FONT_SIZE = 14
LINE_HEIGHT = 18
TEXT_MARGIN = 8
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (20, 20, 20)


def load_sample(dataset, idx: int) -> dict:
    """The sample's data info after the pipeline's loading steps (``Load*``)."""
    info = copy.deepcopy(dataset.get_data_info(idx))
    steps = [
        t
        for t in getattr(dataset.pipeline, 'transforms', [])
        if type(t).__name__.startswith('Load')
    ]
    return Compose(steps)(info) if steps else info


def conversation_lines(info: dict) -> list[str]:
    """``Q: ... / A: ...`` lines of the sample's turns."""
    turns = info.get('conversations') or [
        dict(question=info.get('question', ''), answer=info.get('answer', ''))
    ]
    lines = []
    for turn in turns:
        lines += [f'Q: {turn.get("question", "")}', f'A: {turn.get("answer", "")}']
    return lines


def draw_masks(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 with each (H, W) mask of ``masks`` blended in its colour."""
    out = image.astype(np.float32)
    for k, mask in enumerate(masks):
        for value, color in ((1, PALETTE[k % len(PALETTE)]), (IGNORE_INDEX, IGNORE_COLOR)):
            sel = mask == value
            out[sel] = (1 - MASK_ALPHA) * out[sel] + MASK_ALPHA * np.asarray(color, np.float32)
    return out.round().astype(np.uint8)


def render(info: dict) -> Image.Image:
    """The image and the image with its masks side by side; the conversation and the file
    name below."""
    image = np.asarray(info['img'])
    masks = np.asarray(info.get('gt_masks', np.zeros((0, *image.shape[:2]))))
    panel = Image.fromarray(np.concatenate([image, draw_masks(image, masks)], axis=1))
    scale = DISPLAY_SIDE / max(panel.size)
    panel = panel.resize((round(panel.width * scale), round(panel.height * scale)), Image.NEAREST)
    chars = max(panel.width // (FONT_SIZE // 2 + 1), 20)
    source = info.get('ann_location') or info.get('img_path') or 'generated'
    lines = [f'{len(masks)} mask(s); {source}']
    for line in conversation_lines(info):
        lines += textwrap.wrap(line, chars) or ['']
    canvas = Image.new(
        'RGB', (panel.width, panel.height + LINE_HEIGHT * len(lines) + 2 * TEXT_MARGIN), BACKGROUND
    )
    canvas.paste(panel, (0, 0))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(FONT_SIZE)
    for k, line in enumerate(lines):
        draw.text(
            (TEXT_MARGIN, panel.height + TEXT_MARGIN + k * LINE_HEIGHT), line, TEXT_COLOR, font
        )
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(description='Draw dataset samples with masks and text')
    parser.add_argument('config')
    parser.add_argument('--split', choices=sorted(LOADERS), default='train')
    parser.add_argument('--output-dir', default='work_dirs/browse_dataset')
    parser.add_argument('--max-samples', type=int, default=10, help='first N samples (-1: all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config edits')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    dataset = DATASETS.build(cfg[LOADERS[args.split]].dataset)
    if getattr(dataset, 'pipeline', None) is None:
        raise ValueError(
            f'{args.config}: {type(dataset).__name__} has no pipeline (a mix); browse one of '
            f'its datasets with --cfg-options {LOADERS[args.split]}.dataset=... instead.'
        )
    count = len(dataset) if args.max_samples < 0 else min(args.max_samples, len(dataset))
    os.makedirs(args.output_dir, exist_ok=True)
    with progress_bar(count) as bar:
        for idx in range(count):
            render(load_sample(dataset, idx)).save(osp.join(args.output_dir, f'{idx}.png'))
            bar.update()
    print(f'{count} samples drawn to {args.output_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
