"""The fault-injection harness, short: the demo on 8 samples for 2 epochs, SIGKILLed twice
(once at a seeded random iteration, once halfway through writing a checkpoint), resumed
with ``tools/train.py --resume``; final weights and per-epoch val metrics must equal
those of the uninterrupted run bit for bit. The >= 5-kill run is in docs/get_started.md.
"""

import json
import os.path as osp
import subprocess
import sys

import pytest
from tool_runner import DEMO, REPO, SMALL

HARNESS = osp.join(REPO, 'tools', 'analysis_tools', 'fault_injection.py')
OPTS = SMALL + [
    'train_dataloader.dataset.num_samples=8',  # overrides SMALL's 16
    'val_dataloader.dataset.num_samples=4',
    'train_dataloader.batch_size=2',
    'train_cfg.max_epochs=2',
    'param_scheduler.0.end=2',
]


@pytest.mark.slow
def test_killed_twice_then_resumed_equals_the_uninterrupted_run(tmp_path):
    cmd = [sys.executable, HARNESS, DEMO, '--work-dir', str(tmp_path), '--kills', '2']
    cmd += ['--seed', '1', '--iter-interval', '2', '--max-delay', '0.2', '--cfg-options', *OPTS]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    log = (tmp_path / 'harness.log').read_text() if (tmp_path / 'harness.log').exists() else ''
    assert proc.returncode == 0, proc.stdout + proc.stderr + log[-3000:]
    result = json.loads((tmp_path / 'fault_injection.json').read_text())
    assert [a['killed'] for a in result['attempts']].count('save') == 1
    assert all(a['returncode'] == -9 for a in result['attempts'])  # SIGKILL, both times
    save_kill = next(a for a in result['attempts'] if a['killed'] == 'save')
    assert save_kill['tmp_files'], 'the kill inside a save leaves a half-written file'
    assert result['weights_identical'] and result['val_identical']
    assert result['val_epochs'] == [1, 2]
    assert 'Removing' in log and 'a file half-written when a run died' in log
    assert 'Auto resumed from the latest intact checkpoint' in log


def test_resume_from_a_truncated_checkpoint_names_it(tmp_path):
    from tool_runner import run_tool

    ckpt = tmp_path / 'epoch_1.pth'
    torch_save = 'import torch; torch.save({"meta": {}, "state_dict": {}}, "%s")' % ckpt
    subprocess.run([sys.executable, '-c', torch_save], check=True)
    ckpt.write_bytes(ckpt.read_bytes()[:-40])  # the zip directory cut off
    proc = run_tool(
        'train.py', DEMO, '--work-dir', str(tmp_path), '--resume', str(ckpt),
        '--cfg-options', *OPTS,
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"Checkpoint '{ckpt}' is truncated or corrupted" in proc.stderr
    assert 'OSError' not in proc.stderr and 'PytorchStreamReader' not in proc.stderr
