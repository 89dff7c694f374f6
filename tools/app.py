"""A web demo (Gradio): ask questions about an image and see the masks the model draws.

``python tools/app.py`` starts on the tiny demo model (``configs/lisa/lisa_tiny_shapes.py``,
trained on first start into ``work_dirs/lisa_tiny_shapes`` if no checkpoint is there, with
its progress in the page); ``python tools/app.py CONFIG CHECKPOINT``,
``python tools/app.py EXPORT_OR_CONVERTED_FOLDER`` or ``python tools/app.py CONFIG
--random-weights`` serve any other model. Open http://127.0.0.1:7860 (``--host`` /
``--port``). See docs/demo.md.
"""

from __future__ import annotations

import argparse
import glob
import html
import logging
import os.path as osp
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from lisakit.apis import PRECISIONS, inference_model, init_model  # noqa: E402
from lisakit.datasets.transforms import LoadImageFromFile  # noqa: E402
from lisakit.utils.cli import USER_ERRORS, config_with_options, error_line, run_cli  # noqa: E402
from lisakit.visualization import overlay_masks  # noqa: E402

DEMO_CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes.py')
DEMO_WORK_DIR = osp.join(REPO, 'work_dirs', 'lisa_tiny_shapes')
#: Upload limits: file size (also enforced by Gradio) and decoded pixels.
MAX_UPLOAD_MB = 20
MAX_IMAGE_PIXELS = 4096 * 4096
BYTES_PER_MB = 1024**2
#: Example scenes rendered at start (coloured shapes, as the demo model was trained on).
NUM_EXAMPLES = 3
EXAMPLE_POOL = 20
EXAMPLE_SIZE = 192
EXAMPLE_QUESTION = 'Can you segment the {color} shape in this image?'
NO_OBJECT = 'no matching object'
#: Unexpected errors are cut to this many characters in the page.
MAX_ERROR_CHARS = 300
#: Overlay colour (RGB): cyan, apart from the colours of the example shapes.
OVERLAY_COLOR = (0, 220, 255)
#: Page refresh period while the demo model trains (seconds).
TRAIN_POLL_S = 2.0
#: mmengine's train log line: ``Epoch(train)  [2][ 50/250]``.
TRAIN_LOG = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
QUANTIZATION = ('none', '4-bit', '8-bit')
#: Display heights (pixels) of the images and of the mask gallery.
IMAGE_HEIGHT = 320
GALLERY_HEIGHT = 220
logger = logging.getLogger('lisakit.app')


def demo_checkpoint(work_dir: str = DEMO_WORK_DIR) -> Optional[str]:
    """The newest best checkpoint of the demo run in ``work_dir``, if any."""
    found = sorted(glob.glob(osp.join(work_dir, 'best_cIoU_epoch_*.pth')), key=osp.getmtime)
    return found[-1] if found else None


class DemoTrainer:
    """Trains the demo config with ``tools/train.py`` in a subprocess and tracks its progress
    from the training log (epoch and iteration)."""

    def __init__(self, config: str, work_dir: str, max_epochs: int) -> None:
        self.config, self.work_dir, self.max_epochs = config, work_dir, max_epochs
        self.fraction, self.returncode = 0.0, None
        self.log_tail: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DemoTrainer:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), self.config]
        cmd += ['--work-dir', self.work_dir]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
        )
        for line in proc.stdout:
            self.log_tail = (self.log_tail + [line.rstrip()])[-5:]
            match = TRAIN_LOG.search(line)
            if match:
                epoch, it, total = (int(g) for g in match.groups())
                self.fraction = min(((epoch - 1) + it / total) / self.max_epochs, 1.0)
        self.returncode = proc.wait()

    def status(self) -> str:
        """One line for the page."""
        if self.running:
            return (
                f'Training the demo model (first start, a few minutes on CPU): '
                f'{100 * self.fraction:.0f}% done.'
            )
        if self.returncode:
            return f'Training the demo model failed: {" / ".join(self.log_tail[-2:])}'
        return 'The demo model is trained.'


@dataclass
class ModelSource:
    """What to serve: a config (file or model folder) and an optional checkpoint."""

    config: str
    checkpoint: Optional[str] = None
    device: str = 'cpu'
    cfg_options: Optional[dict] = None
    max_upload_mb: float = MAX_UPLOAD_MB
    trainer: Optional[DemoTrainer] = None
    _models: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def busy(self) -> Optional[str]:
        """A message while the demo model is still training, else ``None``."""
        if self.trainer is None:
            return None
        if self.trainer.running or self.trainer.returncode:
            return self.trainer.status()
        if self.checkpoint is None:
            self.checkpoint = demo_checkpoint(self.trainer.work_dir)
        return None

    def model(self, precision: Optional[str], quantization: str):
        """The model at this precision / quantization (built once, then reused)."""
        key = (precision, quantization)
        with self._lock:
            if key not in self._models:
                self._models[key] = init_model(
                    config_with_options(self.config, self.cfg_options),
                    self.checkpoint,
                    self.device,
                    precision=precision,
                    load_in_4bit=quantization == '4-bit',
                    load_in_8bit=quantization == '8-bit',
                )
            return self._models[key]


def load_image(path: Optional[str], max_upload_mb: float = MAX_UPLOAD_MB) -> np.ndarray:
    """The uploaded image as RGB (H, W, 3) uint8, checked for size.

    Raises:
        ValueError: No image, a file over ``max_upload_mb``, too many pixels, or a file
            that is not a decodable image.
    """
    if not path:
        raise ValueError('No image: upload one or pick an example.')
    size_mb = osp.getsize(path) / BYTES_PER_MB
    if size_mb > max_upload_mb:
        raise ValueError(
            f'The image file is {size_mb:.1f} MB; this demo takes up to {max_upload_mb:g} MB '
            '(--max-upload-mb). Upload a smaller file.'
        )
    name = osp.basename(path)
    try:
        with Image.open(path) as im:  # the header only: refuse decompression bombs early
            pixels = im.width * im.height
    except (OSError, Image.DecompressionBombError) as err:
        raise ValueError(f'{name} is not a readable image; upload a PNG or JPEG.') from err
    if pixels > MAX_IMAGE_PIXELS:
        raise ValueError(f'{name} has {pixels:,} pixels (max {MAX_IMAGE_PIXELS:,}); resize it.')
    try:
        return LoadImageFromFile()(dict(img_path=path))['img']
    except ValueError as err:
        raise ValueError(f'{name} is not a readable image; upload a PNG or JPEG.') from err


def rejected(sample) -> bool:
    """Whether the model found no object: an explicit ``pred_rejected`` flag when the
    model sets one, otherwise no ``<SEG>`` in its answer (no mask)."""
    flag = sample.get('pred_rejected') if hasattr(sample, 'get') else None
    return bool(flag) if flag is not None else len(sample.pred_masks) == 0


def describe(sample) -> str:
    """Markdown: the answer, then each mask's SAM-predicted IoU or ``no matching object``."""
    lines = [f'**Answer:** {html.escape(sample.pred_text)}']
    if rejected(sample):
        lines.append(f'**Result:** {NO_OBJECT}')
    else:
        ious = sample.pred_iou_scores.tolist()
        lines += [f'- mask {k}: predicted IoU (SAM) {iou:.3f}' for k, iou in enumerate(ious)]
    return '\n'.join(lines)


def answer(source: ModelSource, image_path, question, history, precision, quantization, forced):
    """The page's handler: ``(history, overlay, masks, details, status, question)``.

    Every failure ends in the status line (no traceback in the page); unexpected ones are
    logged with their traceback on the server console.
    """
    history = list(history or [])
    try:
        busy = source.busy()
        if busy:
            return history, None, [], '', busy, question
        if not (question or '').strip():
            raise ValueError('Type a question first.')
        image = load_image(image_path, source.max_upload_mb)
        model = source.model(None if precision == 'config' else precision, quantization)
        sample = inference_model(model, image, question.strip(), answer=(forced or None))
    except USER_ERRORS as err:
        return history, None, [], '', f'Error: {error_line(err)}', question
    except Exception as err:  # shown as one line in the page; the console has the traceback
        logger.exception('app: unexpected error')
        message = ' '.join(str(err).split())
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + '... (the whole message is on the console)'
        line = f'Internal error ({type(err).__name__}): {message}'
        return history, None, [], '', line, question
    masks = sample.pred_masks.numpy()
    reply = html.escape(sample.pred_text) if not rejected(sample) else NO_OBJECT
    if rejected(sample) and sample.pred_text.strip():
        reply = f'{html.escape(sample.pred_text)} ({NO_OBJECT})'
    history += [
        dict(role='user', content=html.escape(question.strip())),
        dict(role='assistant', content=reply),
    ]
    gallery = [
        (mask.astype(np.uint8) * 255, f'mask {k}: predicted IoU {iou:.3f}')
        for k, (mask, iou) in enumerate(zip(masks, sample.pred_iou_scores.tolist()))
    ]
    return (
        history,
        overlay_masks(image, masks, OVERLAY_COLOR),
        gallery,
        describe(sample),
        'Done.',
        '',
    )


def uploaded(
    payload: Optional[dict], max_upload_mb: float = MAX_UPLOAD_MB
) -> tuple[Optional[str], list, str]:
    """The Image component's raw value -> ``(file path, empty chat, status line)``."""
    path = payload.get('path') if isinstance(payload, dict) else None
    if path is None:
        return None, [], 'Ready.'
    try:
        height, width = load_image(path, max_upload_mb).shape[:2]
    except USER_ERRORS as err:
        return path, [], f'Error: {error_line(err)}'
    return path, [], f'Image loaded ({width}x{height}); ask a question.'


def example_images(out_dir: str) -> list[list[str]]:
    """Render :data:`NUM_EXAMPLES` shapes scenes to PNGs; ``[[path, question], ...]``."""
    from lisakit.datasets.shapes_reasonseg import ShapesReasonSegDataset

    dataset = ShapesReasonSegDataset(
        num_samples=EXAMPLE_POOL, split='test', img_size=EXAMPLE_SIZE, query_weights=dict(color=1)
    )
    examples, colors = [], set()
    for idx in range(EXAMPLE_POOL):  # scenes whose targets differ in colour
        info = dataset.get_data_info(idx)
        color = info['shapes'][info['target']]['color']
        if color in colors:
            continue
        colors.add(color)
        path = osp.join(out_dir, f'shapes_{idx}.png')
        Image.fromarray(info['img']).save(path)
        examples.append([path, EXAMPLE_QUESTION.format(color=color)])
        if len(examples) == NUM_EXAMPLES:
            break
    return examples


def build_ui(source: ModelSource, examples: list[list[str]]):
    """The Gradio page."""
    import gradio as gr

    with gr.Blocks(title='lisakit reasoning segmentation') as demo:
        gr.Markdown(
            '# lisakit: reasoning segmentation\nUpload an image (or pick an example), ask '
            'a question, and the model answers with a mask for each `<SEG>` it writes. '
            'Follow-up questions are asked about the same image.'
        )
        status = gr.Markdown(source.busy() or 'Ready.', elem_id='status')
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    type='filepath',
                    image_mode=None,
                    label='Image',
                    elem_id='input-image',
                    height=IMAGE_HEIGHT,
                )
                question = gr.Textbox(label='Question', elem_id='question', lines=1)
                with gr.Row():
                    ask = gr.Button('Ask', variant='primary', elem_id='ask')
                    clear = gr.Button('Clear chat', elem_id='clear')
                with gr.Accordion('Options', open=True):
                    precision = gr.Dropdown(
                        ['config', *sorted(PRECISIONS)], value='config', label='Precision'
                    )
                    quantization = gr.Radio(
                        list(QUANTIZATION), value='none', label='Language model quantization'
                    )
                    forced = gr.Textbox(
                        label='Fixed answer (optional)',
                        info='Teacher-force this answer instead of generating one, e.g. '
                        '"<SEG>." (one mask per <SEG>), as LISA validates.',
                        elem_id='forced-answer',
                    )
                gr.Examples(examples, inputs=[image, question], label='Examples')
            with gr.Column():
                chat = gr.Chatbot(label='Chat', elem_id='chat', height=260)
                overlay = gr.Image(
                    label='Overlay', format='png', elem_id='overlay', height=IMAGE_HEIGHT
                )
                details = gr.Markdown(elem_id='details')
                masks = gr.Gallery(
                    label='Masks',
                    format='png',
                    elem_id='masks',
                    columns=4,
                    height=GALLERY_HEIGHT,
                    object_fit='contain',
                )

        def handler(*args):
            return answer(source, *args)

        # the upload's file path, kept without Gradio's image decoding (which would turn a
        # broken file into a bare "Error" badge instead of our message)
        image_path = gr.State(None)
        image.change(
            lambda p: uploaded(p, source.max_upload_mb),
            image,
            [image_path, chat, status],
            preprocess=False,
        )
        inputs = [image_path, question, chat, precision, quantization, forced]
        outputs = [chat, overlay, masks, details, status, question]
        ask.click(handler, inputs, outputs)
        question.submit(handler, inputs, outputs)
        clear.click(
            lambda: ([], None, [], '', 'Ready.'), None, [chat, overlay, masks, details, status]
        )
        if source.trainer is not None:  # the status of the build may be stale: refresh it
            demo.load(lambda: source.busy() or 'Ready.', None, status)
        if source.trainer is not None and source.trainer.running:
            timer = gr.Timer(TRAIN_POLL_S)

            def poll():
                busy = source.busy()
                return busy or 'Ready.', gr.Timer(active=busy is not None)

            timer.tick(poll, None, [status, timer])
    return demo


def parse_args() -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='lisakit web demo (Gradio)')
    parser.add_argument(
        'config', nargs='?', help='config file or model folder (default: the tiny demo)'
    )
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (config files only)')
    parser.add_argument(
        '--random-weights', action='store_true', help='serve the config without a checkpoint'
    )
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-upload-mb', type=float, default=MAX_UPLOAD_MB)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config edits')
    return parser.parse_args()


def make_source(args: argparse.Namespace) -> ModelSource:
    """Resolve the arguments to a :class:`ModelSource` (starting demo training if needed)."""
    config, checkpoint = args.config or DEMO_CONFIG, args.checkpoint
    if not osp.exists(config):
        raise FileNotFoundError(f'{config} does not exist; pass a config file or model folder.')
    if checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint {checkpoint} does not exist.')
    config_with_options(config, args.cfg_options)  # refuses options on a model folder
    source = ModelSource(config, checkpoint, args.device, args.cfg_options, args.max_upload_mb)
    needs_weights = not (osp.isdir(config) or checkpoint or args.random_weights)
    if needs_weights and args.config is not None:
        raise ValueError(f'{config}: pass a CHECKPOINT, or --random-weights to try it untrained.')
    if needs_weights:
        source.checkpoint = demo_checkpoint()
        if source.checkpoint is None:
            from mmengine.config import Config

            epochs = Config.fromfile(DEMO_CONFIG).train_cfg.max_epochs
            source.trainer = DemoTrainer(DEMO_CONFIG, DEMO_WORK_DIR, epochs).start()
    return source


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO)
    source = make_source(args)
    examples = example_images(tempfile.mkdtemp(prefix='lisakit_app_'))
    demo = build_ui(source, examples)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=f'{args.max_upload_mb:g}mb',
        show_error=True,
        allowed_paths=[osp.dirname(examples[0][0])],
    )
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
