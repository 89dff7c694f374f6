"""TrainingHistoryHook sends its rows through runner.visualizer: the TensorBoard backend."""

import glob
import json
import os.path as osp

import pytest
from tool_runner import REPO, output, train

TENSORBOARD = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_tensorboard_shapes.py')


@pytest.mark.slow
def test_history_rows_reach_tensorboard(tmp_path):
    pytest.importorskip(
        'tensorboard', reason='the tensorboard extra: pip install -e .[tensorboard]'
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = train(tmp_path, 1, config=TENSORBOARD)
    assert proc.returncode == 0, output(proc)
    events = glob.glob(str(tmp_path / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(events[0])
    acc.Reload()
    history = json.loads((tmp_path / 'training_history.json').read_text())
    tags = set(acc.Tags()['scalars'])
    for split in ('train', 'val'):
        row = history[split][-1]
        for key in ('loss', 'ce', 'bce', 'dice'):
            (event,) = acc.Scalars(f'history/{split}/{key}')
            assert event.step == row['epoch'] == 1
            assert event.value == pytest.approx(row[key], rel=1e-6)
    for key in ('cIoU', 'gIoU'):
        (event,) = acc.Scalars(f'history/val/{key}')
        assert event.value == pytest.approx(history['val'][-1][key], rel=1e-6)
    assert 'history/benchmarks/peak_memory_gb' in tags
    assert 'history/train/lr' in tags
