"""tools/misc/print_config.py and browse_dataset.py on the tiny config."""

import numpy as np
from mmengine.config import Config
from PIL import Image
from tool_runner import DEMO, output, run_tool


def test_print_config_applies_options_and_saves(tmp_path):
    saved = tmp_path / 'merged.py'
    proc = run_tool(
        'misc/print_config.py',
        DEMO,
        '--cfg-options',
        'optim_wrapper.optimizer.lr=0.123',
        '--save-path',
        str(saved),
    )
    assert proc.returncode == 0, output(proc)
    assert 'lr=0.123' in proc.stdout and "type='LISA'" in proc.stdout
    assert Config.fromfile(str(saved)).optim_wrapper.optimizer.lr == 0.123


def test_browse_dataset_draws_image_masks_and_text(tmp_path):
    proc = run_tool(
        'misc/browse_dataset.py',
        DEMO,
        '--split',
        'val',
        '--max-samples',
        '2',
        '--output-dir',
        str(tmp_path),
    )
    assert proc.returncode == 0, output(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['0.png', '1.png']
    drawn = np.array(Image.open(tmp_path / '0.png'))  # (H + text, 2W, 3)
    half = drawn.shape[1] // 2
    left, right = drawn[:half, :half], drawn[:half, half:]
    assert (left != right).any()  # the target mask is blended into the right panel
    assert (drawn[half:] < 128).any()  # text below the panels
