"""init_model / inference_model on the tiny config."""

import numpy as np
import torch

from lisakit.apis import inference_model, init_model
from lisakit.datasets.shapes_reasonseg import render_scene


def test_inference_on_an_array_and_a_file(tiny_cfg, tmp_path):
    model = init_model(tiny_cfg)
    shapes = [
        dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0),
        dict(kind='circle', color='blue', cx=44.0, cy=44.0, r=10.0, angle=0.0),
    ]
    image, _ = render_scene(shapes, 64)
    sample = inference_model(model, image, 'Can you segment the red shape in this image?')
    assert sample.pred_masks.shape == (1, 64, 64) and sample.pred_masks.dtype == torch.bool
    from PIL import Image

    path = tmp_path / 'img.png'
    Image.fromarray(image).save(path)
    again = inference_model(model, str(path), 'the red shape', answer='<SEG> and <SEG>.')
    assert again.pred_masks.shape == (2, 64, 64)
    assert np.array_equal(again.metainfo['ori_shape'], (64, 64))
