"""init_model / inference_model and tools/infer.py on the tiny config."""

import numpy as np
import torch
from PIL import Image
from tool_runner import DEMO, output, run_tool

from lisakit.apis import inference_model, init_model
from lisakit.datasets.shapes_reasonseg import render_scene

SHAPES = [
    dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0),
    dict(kind='circle', color='blue', cx=44.0, cy=44.0, r=10.0, angle=0.0),
]


def test_teacher_forced_and_generated_inference(tiny_cfg, tmp_path):
    model = init_model(tiny_cfg)
    image, _ = render_scene(SHAPES, 64)
    forced = inference_model(model, image, 'the red shape', answer='<SEG> and <SEG>.')
    assert forced.pred_masks.shape == (2, 64, 64) and forced.pred_masks.dtype == torch.bool
    path = tmp_path / 'img.png'
    Image.fromarray(image).save(path)
    generated = inference_model(model, str(path), 'Can you segment the red shape?')
    assert isinstance(generated.pred_text, str)
    assert generated.pred_masks.shape[1:] == (64, 64)
    assert len(generated.pred_masks) == generated.num_generated_seg  # no targets: all kept


def test_infer_tool_writes_mask_and_overlay(tmp_path):
    image, _ = render_scene(SHAPES, 64)
    image = np.ascontiguousarray(image[:, :48])  # non-square input
    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    out = tmp_path / 'out'
    proc = run_tool(
        'infer.py', DEMO, '-', str(path), 'the red shape', '--answer', '<SEG>.', '--out', str(out)
    )
    assert proc.returncode == 0, output(proc)
    assert '1 mask(s) written' in proc.stdout
    mask = np.asarray(Image.open(out / 'scene_mask_0.png'))
    overlay = np.asarray(Image.open(out / 'scene_overlay.png'))
    assert mask.shape == (64, 48) and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == (64, 48, 3)
    expected = np.where(
        mask[..., None] > 0, (0.5 * image + 0.5 * np.array([230, 30, 30])).round(), image
    )
    np.testing.assert_array_equal(overlay, expected.astype(np.uint8))
