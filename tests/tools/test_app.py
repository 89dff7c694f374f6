"""tools/app.py without a browser: upload checks, rejection and errors in the page."""

import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tool_runner import DEMO, REPO

from lisakit.structures import ReasonSegDataSample

sys.path.insert(0, osp.join(REPO, 'tools'))
import app  # noqa: E402


def _sample(num_masks, **fields):
    sample = ReasonSegDataSample()
    sample.pred_text = 'It is <SEG>.' if num_masks else 'Nothing here.'
    sample.pred_masks = torch.zeros(num_masks, 4, 4, dtype=torch.bool)
    sample.pred_iou_scores = torch.full((num_masks,), 0.5)
    for key, value in fields.items():
        setattr(sample, key, value)
    return sample


def test_upload_checks(tmp_path):
    good = tmp_path / 'good.png'
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(good)
    assert app.load_image(str(good)).shape == (8, 6, 3)
    assert app.uploaded({'path': str(good)})[2] == 'Image loaded (6x8); ask a question.'
    with pytest.raises(ValueError, match='this demo takes up to 1e-05 MB'):
        app.load_image(str(good), max_upload_mb=1e-5)
    huge = tmp_path / 'huge.png'
    Image.new('L', (5000, 4000)).save(huge)  # 20 MP: more than MAX_IMAGE_PIXELS
    with pytest.raises(ValueError, match='huge.png has 20,000,000 pixels'):
        app.load_image(str(huge))
    junk = tmp_path / 'junk.jpg'
    junk.write_bytes(b'\xff\xd8\xff' + b'\0' * 32)
    path, chat, status = app.uploaded({'path': str(junk)})
    assert status == 'Error: junk.jpg is not a readable image; upload a PNG or JPEG.'
    with pytest.raises(ValueError, match='No image'):
        app.load_image(None)


def test_rejection_flag_and_missing_mask_read_as_no_matching_object():
    assert app.rejected(_sample(0)) and not app.rejected(_sample(1))
    assert app.rejected(_sample(1, pred_rejected=True))  # a future model's explicit flag
    assert not app.rejected(_sample(0, pred_rejected=False))
    assert app.NO_OBJECT in app.describe(_sample(0))
    assert 'mask 0: predicted IoU (SAM) 0.500' in app.describe(_sample(1))


def test_errors_end_in_the_status_line(tmp_path):
    source = app.ModelSource(DEMO)
    image = tmp_path / 'img.png'
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    history = [dict(role='user', content='earlier')]
    out = app.answer(source, str(image), '  ', history, 'config', 'none', '')
    assert out[0] == history and out[4] == 'Error: Type a question first.'
    out = app.answer(source, None, 'Where?', history, 'config', 'none', '')
    assert out[4] == 'Error: No image: upload one or pick an example.'
    out = app.answer(source, str(image), 'Where?', [], 'fp64', 'none', '')
    assert out[4].startswith("Error: precision='fp64'; expected one of")
