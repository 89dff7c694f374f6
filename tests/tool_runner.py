"""Helpers to run lisakit's command-line tools on the tiny configs in tests."""

import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes.py')
QLORA = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_shapes.py')
#: Few samples and no worker processes: short, deterministic runs.
SMALL = [
    'train_dataloader.dataset.num_samples=16',
    'val_dataloader.dataset.num_samples=8',
    'test_dataloader.dataset.num_samples=8',
] + [
    f'{loader}.{key}'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    for key in ('num_workers=0', 'persistent_workers=False')
]


def run_tool(tool, *args, env=None):
    """Run ``tools/<tool>`` with this Python; return the completed process."""
    cmd = [sys.executable, osp.join(REPO, 'tools', tool), *args]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env)


def train(work_dir, epochs, *extra, config=DEMO, schedule_epochs=None, env=None):
    """``tools/train.py`` for ``epochs`` on SMALL data; the cosine schedule spans
    ``schedule_epochs`` (default ``epochs``), so a run can stop early as if interrupted."""
    schedule = schedule_epochs or epochs
    opts = SMALL + [f'train_cfg.max_epochs={epochs}', f'param_scheduler.0.end={schedule}']
    return run_tool(
        'train.py', config, '--work-dir', str(work_dir), *extra, '--cfg-options', *opts, env=env
    )


def output(proc) -> str:
    """The tail of a process's output, for assertion messages."""
    return proc.stdout[-3000:] + proc.stderr[-3000:]
