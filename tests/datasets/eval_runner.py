"""``tools/test.py`` on a generated dataset with the tiny demo model (seeded random weights)."""

import json

import torch
from tool_runner import DEMO, output, run_tool

from lisakit.registry import MODELS


def evaluate_with_test_tool(tmp_path, tiny_cfg, config_text: str) -> tuple[dict, str]:
    """Save the tiny model, run ``tools/test.py`` and return ``(metrics, log)``.

    Args:
        tmp_path: Folder for the checkpoint, config, work dir and metrics file.
        tiny_cfg: The demo config (its model is saved with ``torch.manual_seed(0)``).
        config_text: Config lines after ``_base_ = [DEMO]`` (the ``test_dataloader``...).
    """
    ckpt = tmp_path / 'model.pth'
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(tiny_cfg.model).state_dict()}, ckpt)
    config = tmp_path / 'eval.py'
    config.write_text(f"_base_ = ['{DEMO}']\n{config_text}")
    out = tmp_path / 'metrics.json'
    proc = run_tool(
        'test.py', str(config), str(ckpt), '--work-dir', str(tmp_path / 'wd'), '--out', str(out)
    )
    assert proc.returncode == 0, output(proc)
    return json.loads(out.read_text()), proc.stdout + proc.stderr
