"""Lean checkpoints, their strict loading, atomic writes and exact resume (tiny configs)."""

import json
import os

import pytest
import torch
from lean_resume import assert_same_final_checkpoint, train_in_process
from tool_runner import DEMO, QLORA, SMALL, output, run_tool, train

from lisakit.utils.checkpoint_format import FORMAT_VERSION
from lisakit.utils.io import register_atomic_local_backend


@pytest.fixture(scope='module')
def lean_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('lean')
    proc = train(work_dir, 1, config=QLORA)
    assert proc.returncode == 0, output(proc)
    return work_dir


def test_lean_checkpoint_holds_only_trainable_weights(lean_run):
    ckpt = torch.load(lean_run / 'epoch_1.pth', map_location='cpu', weights_only=False)
    info = ckpt['meta']['lisakit']
    assert info['lean'] and set(ckpt['state_dict']) == set(info['trainable_keys'])
    assert any('lora_' in k for k in ckpt['state_dict'])
    assert any('trainable_tokens_delta' in k for k in ckpt['state_dict'])
    assert not any(k.startswith('sam_encoder.') for k in ckpt['state_dict'])
    assert not any('vision_tower' in k for k in ckpt['state_dict'])
    assert info['tokens']['seg_token_id'] >= 0 and 'transformers' in info['versions']
    assert info['format_version'] == FORMAT_VERSION


def test_lean_checkpoint_reproduces_val_metrics(lean_run, tmp_path):
    history = json.loads((lean_run / 'training_history.json').read_text())
    out = tmp_path / 'm.json'
    proc = run_tool(
        'test.py',
        QLORA,
        str(lean_run / 'epoch_1.pth'),
        '--work-dir',
        str(tmp_path),
        '--out',
        str(out),
        '--cfg-options',
        *SMALL,
    )
    assert proc.returncode == 0, output(proc)
    metrics = json.loads(out.read_text())
    assert metrics['cIoU'] == pytest.approx(history['val'][0]['cIoU'], abs=1e-9)
    assert metrics['gIoU'] == pytest.approx(history['val'][0]['gIoU'], abs=1e-9)


@pytest.mark.parametrize(
    'option, words',
    [
        # other trainables: the checkpoint's extra keys are named
        ('model.backbone.trainable.embeddings=none', ('unexpected', 'trainable_tokens_delta')),
        # another tokenizer: the token ids that differ are named
        (
            'model.backbone.processor.tokenizer.extra_words=[zebra]',
            ('another tokenizer', 'vocab_size'),
        ),
    ],
    ids=['other_trainables', 'another_tokenizer'],
)
def test_lean_checkpoint_into_another_model_names_the_mismatch(lean_run, tmp_path, option, words):
    proc = run_tool(
        'test.py',
        QLORA,
        str(lean_run / 'epoch_1.pth'),
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        *SMALL,
        option,
    )
    assert proc.returncode != 0
    assert all(word in proc.stderr for word in words), proc.stderr


def test_resume_matches_uninterrupted_run(tmp_path):
    # in process, as tools/train.py builds the Runner, with the demo's own hooks (full
    # checkpoints): 2 epochs in one run, and 1 epoch (stopping as if interrupted: the
    # schedule spans 2) then resume to 2 in another
    full, part = tmp_path / 'full', tmp_path / 'part'
    train_in_process(DEMO, full, 2, lean=False)
    train_in_process(DEMO, part, 1, lean=False)
    train_in_process(DEMO, part, 2, resume=True, lean=False)
    a, b = assert_same_final_checkpoint(full, part)
    assert any(k.startswith('sam_encoder.') for k in a['state_dict'])  # full checkpoints
    logs = ''.join(log.read_text() for log in part.glob('*/*.log'))
    assert 'resumed epoch: 1, iter: 2' in logs  # mmengine resumed; not retrained from 0
    ha = json.loads((full / 'training_history.json').read_text())
    hb = json.loads((part / 'training_history.json').read_text())
    assert ha['train'][-1]['loss'] == pytest.approx(hb['train'][-1]['loss'], rel=1e-6)


def test_atomic_put_keeps_the_old_file_on_failure(tmp_path):
    from mmengine.fileio import get_file_backend

    register_atomic_local_backend()
    path = tmp_path / 'ckpt.pth'
    backend = get_file_backend(str(path))
    backend.put(b'first', str(path))
    with pytest.raises(TypeError):
        backend.put(object(), str(path))  # fails while writing
    assert path.read_bytes() == b'first'
    assert os.listdir(tmp_path) == ['ckpt.pth']  # no temporary file left behind
