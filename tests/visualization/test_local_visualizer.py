"""Mask overlays."""

import numpy as np
import torch
from PIL import Image

from lisakit.structures import ReasonSegDataSample
from lisakit.visualization import ReasonSegLocalVisualizer


def test_overlay_draws_gt_and_pred_side_by_side(tmp_path):
    vis = ReasonSegLocalVisualizer(name='test_vis', save_dir=str(tmp_path))
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    sample = ReasonSegDataSample(metainfo=dict(question='<image>\nthe red shape'))
    gt = torch.zeros(1, 64, 64, dtype=torch.uint8)
    gt[0, :32] = 1
    gt[0, 40:] = 255  # ignored pixels are not drawn as object
    sample.gt_masks = gt
    sample.pred_masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    out = tmp_path / 'vis.png'
    drawn = vis.add_datasample('s', image, sample, out_file=str(out))
    assert drawn.shape == (384, 768, 3)
    saved = np.asarray(Image.open(out))
    assert saved.shape == drawn.shape
    left = saved[:, :384]
    # object rows are tinted green, ignored rows stay black
    assert left[100, 200, 1] > left[100, 200, 0]
    assert left[350, 200].max() == 0
