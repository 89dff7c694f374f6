"""Mask overlays for reasoning segmentation."""

from __future__ import annotations

import textwrap
from typing import Optional

import numpy as np
from mmengine.visualization import Visualizer
from PIL import Image

from lisakit.registry import VISUALIZERS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import IMAGE_TOKEN

GT_COLOR = (0, 200, 0)
PRED_COLOR = (230, 30, 30)
#: Small images are upscaled to at least this side so the text stays readable.
MIN_DRAW_SIDE = 384
#: Characters per title line at the minimum drawing side.
TEXT_WRAP = 40


def overlay_masks(
    image: np.ndarray, masks: np.ndarray, color=PRED_COLOR, alpha: float = 0.5
) -> np.ndarray:
    """Blend (n, H, W) boolean masks over an (H, W, 3) uint8 image at its own size."""
    out = image.astype(np.float32)
    for mask in np.asarray(masks).astype(bool):
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float32)
    return out.round().astype(np.uint8)


@VISUALIZERS.register_module()
class ReasonSegLocalVisualizer(Visualizer):
    """Draw ground-truth (green) and predicted (red) masks side by side, with the query."""

    def _panel(self, image: np.ndarray, masks, color, title: str, alpha: float) -> np.ndarray:
        self.set_image(image)
        if masks is not None and len(masks):
            arr = np.asarray(masks)
            m = arr if arr.dtype == bool else arr == 1  # 255 (ignore) is not drawn
            self.draw_binary_masks(m, colors=[color] * len(m), alphas=alpha)
        self.draw_texts(
            title,
            np.array([5, 5]),
            font_sizes=12,
            colors='white',
            bboxes=dict(facecolor='black', alpha=0.6, pad=2),
        )
        return self.get_image()

    def add_datasample(
        self,
        name: str,
        image: np.ndarray,
        data_sample: ReasonSegDataSample,
        draw_gt: bool = True,
        draw_pred: bool = True,
        show: bool = False,
        wait_time: float = 0,
        out_file: Optional[str] = None,
        step: int = 0,
        alpha: float = 0.5,
    ) -> np.ndarray:
        """Draw a sample; save to ``out_file`` or the visualizer backends.

        Args:
            name: Image identifier.
            image: (H, W, 3) RGB uint8 original image.
            data_sample: Sample with ``gt_masks`` and/or ``pred_masks``.
            draw_gt: Draw the target masks.
            draw_pred: Draw the predicted masks.
            show: Display the drawing.
            wait_time: Display time.
            out_file: Where to write the PNG instead of the backends.
            step: Global step for the backends.
            alpha: Mask opacity.

        Returns:
            The drawn (H', W', 3) RGB image.
        """
        scale = max(1, int(np.ceil(MIN_DRAW_SIDE / max(image.shape[:2]))))
        big = np.asarray(
            Image.fromarray(image).resize(
                (image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST
            )
        )

        def up(masks):
            if masks is None:
                return None
            m = np.asarray(masks.cpu() if hasattr(masks, 'cpu') else masks)
            return m.repeat(scale, axis=-2).repeat(scale, axis=-1)

        question = str(data_sample.metainfo.get('question', '')).replace(IMAGE_TOKEN, '')

        def title(prefix: str) -> str:
            return '\n'.join(textwrap.wrap(prefix + question.strip(), TEXT_WRAP))

        panels = []
        if draw_gt and 'gt_masks' in data_sample:
            panels.append(
                self._panel(big, up(data_sample.gt_masks), GT_COLOR, title('GT: '), alpha)
            )
        if draw_pred and 'pred_masks' in data_sample:
            panels.append(
                self._panel(big, up(data_sample.pred_masks), PRED_COLOR, title('Pred: '), alpha)
            )
        drawn = np.concatenate(panels, axis=1) if panels else big
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            Image.fromarray(drawn).save(out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn
