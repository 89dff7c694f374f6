"""Write mask overlays during validation / testing (``tools/test.py --show-dir``)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from lisakit.datasets.transforms import LoadImageFromFile
from lisakit.registry import HOOKS


@HOOKS.register_module()
class ReasonSegVisualizationHook(Hook):
    """Draw GT and predicted masks of test (and optionally val) samples.

    Args:
        draw: Whether to draw at all (``tools/test.py --show-dir`` turns it on).
        interval: Draw every ``interval``-th batch.
        show: Display instead of only saving.
        test_out_dir: Folder for test overlays, relative to the run's log dir
            unless absolute.
        draw_val: Also draw during validation (to the visualizer backends).
    """

    def __init__(
        self,
        draw: bool = False,
        interval: int = 1,
        show: bool = False,
        test_out_dir: Optional[str] = None,
        draw_val: bool = False,
    ) -> None:
        self.draw = draw
        self.interval = interval
        self.show = show
        self.test_out_dir = test_out_dir
        self.draw_val = draw_val

    @staticmethod
    def _image(sample) -> np.ndarray:
        meta = sample.metainfo
        if meta.get('ori_img') is not None:
            return meta['ori_img']
        return LoadImageFromFile()(dict(img_path=meta['img_path']))['img']

    def _draw(self, runner, batch_idx: int, outputs: Sequence, out_dir: Optional[str]) -> None:
        if not self.draw or batch_idx % self.interval:
            return
        visualizer = Visualizer.get_current_instance()
        for k, sample in enumerate(outputs):
            name = f'{batch_idx:05d}_{k}'
            idx = sample.metainfo.get('sample_idx')
            if idx is not None:
                name = f'{int(idx):05d}'
            out_file = os.path.join(out_dir, f'{name}.png') if out_dir else None
            visualizer.add_datasample(
                name,
                self._image(sample),
                sample,
                show=self.show,
                out_file=out_file,
                step=runner.iter,
            )

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.draw_val:
            self._draw(runner, batch_idx, outputs or [], None)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        out_dir = None
        if self.test_out_dir is not None:
            out_dir = self.test_out_dir
            if not os.path.isabs(out_dir):
                out_dir = os.path.join(runner.log_dir, out_dir)
            os.makedirs(out_dir, exist_ok=True)
        self._draw(runner, batch_idx, outputs or [], out_dir)
