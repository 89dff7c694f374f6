"""lisakit's FlexibleRunner (mmengine 0.10.7 fixes) on the tiny config, one CPU process."""

import pytest
import torch
from tool_runner import output, train

FLEXIBLE = ['--cfg-options', 'runner_type=FlexibleRunner']


def test_flexible_runner_checkpoints_resume_at_the_next_epoch(tmp_path):
    # save_best re-saves epoch_1.pth after validation; mmengine's FlexibleRunner stored
    # epoch 2 there, so a resumed run skipped epoch 2
    proc = train(tmp_path, 1, *FLEXIBLE, schedule_epochs=2)
    assert proc.returncode == 0, output(proc)
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert ckpt['meta']['epoch'] == 1
    proc = train(tmp_path, 2, '--resume', *FLEXIBLE, schedule_epochs=2)
    assert proc.returncode == 0, output(proc)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert 'Epoch(train) [2]' in proc.stdout + proc.stderr


def test_deepspeed_optimizers_register_without_the_removed_1bit_ones():
    pytest.importorskip('deepspeed')
    from mmengine.registry import OPTIMIZERS

    from lisakit.engine.runner import register_deepspeed_optimizers

    register_deepspeed_optimizers()
    assert register_deepspeed_optimizers() == []  # idempotent
    assert {'FusedAdam', 'DeepSpeedCPUAdam', 'FusedLamb'} <= set(OPTIMIZERS.module_dict)
