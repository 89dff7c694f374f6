"""The restricted checkpoint loader used for --resume / tools/test.py on torch >= 2.6."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from lisakit.utils.checkpoint import UNSAFE_LOAD_ENV, load_from_lisakit_safe


class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_mmengine_style_checkpoint_loads(tmp_path):
    buf = HistoryBuffer()
    buf.update(0.5)
    ckpt = dict(
        state_dict={'w': torch.ones(2)},
        message_hub=dict(log_scalars={'loss': buf}),
        meta=dict(best=np.float64(0.9), arr=np.arange(3)),
    )
    path = tmp_path / 'ok.pth'
    torch.save(ckpt, path)
    loaded = load_from_lisakit_safe(str(path))
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 0.5
    assert loaded['meta']['best'] == pytest.approx(0.9)


def test_foreign_globals_are_refused_with_the_opt_in_named(tmp_path, monkeypatch):
    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    with pytest.raises(pickle.UnpicklingError, match=f'posix.system.*{UNSAFE_LOAD_ENV}=1'):
        load_from_lisakit_safe(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_from_lisakit_safe(str(tmp_path / 'nope.pth'))


# ----------------------------------------------------------------- integrity checks
from lisakit.utils.checkpoint import (  # noqa: E402
    CheckpointError,
    UnsafeCheckpointError,
    check_training_checkpoint,
    checkpoint_problem,
    find_resume_checkpoint,
    verify_checkpoint,
)


def _training_ckpt(path, value: float = 1.0) -> None:
    torch.save(dict(state_dict={'w': torch.full((64,), value)}, meta=dict(epoch=1)), path)


def test_intact_checkpoint_passes(tmp_path):
    path = tmp_path / 'ok.pth'
    _training_ckpt(path)
    assert checkpoint_problem(str(path)) is None
    verify_checkpoint(str(path))
    check_training_checkpoint(load_from_lisakit_safe(str(path)), str(path))


def test_truncated_checkpoint_is_named_with_its_path_and_the_fix(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    _training_ckpt(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"epoch_3\.pth' is truncated.*--resume") as err:
        load_from_lisakit_safe(str(path))
    assert isinstance(err.value, ValueError)  # the CLI prints ValueErrors as one line


def test_zero_byte_checkpoint(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'')
    with pytest.raises(CheckpointError, match=r"epoch_1\.pth' is empty \(0 bytes\)"):
        load_from_lisakit_safe(str(path))


def test_corrupted_byte_fails_the_crc_check(tmp_path):
    path = tmp_path / 'c.pth'
    _training_ckpt(path)
    data = bytearray(path.read_bytes())
    start = data.index(b'\x00\x00\x80\x3f')  # the stored float 1.0s
    data[start + 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='fails its CRC check'):
        verify_checkpoint(str(path))


def test_foreign_pickle_and_foreign_zip(tmp_path):
    plain = tmp_path / 'plain.pth'
    plain.write_bytes(pickle.dumps({'weights': [1, 2, 3]}, protocol=4))
    with pytest.raises(CheckpointError, match=r"plain\.pth' is not a PyTorch checkpoint"):
        load_from_lisakit_safe(str(plain))
    archive = tmp_path / 'archive.pth'
    import zipfile

    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('readme.txt', 'not a model')
    with pytest.raises(CheckpointError, match='zip archive but not a PyTorch checkpoint'):
        load_from_lisakit_safe(str(archive))
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    with pytest.raises(CheckpointError, match='not a zip archive'):
        verify_checkpoint(str(text))


def test_torch_file_that_is_not_a_training_checkpoint(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.ones(2)}, path)  # a bare state dict: loads, cannot resume
    with pytest.raises(CheckpointError, match='not a lisakit training checkpoint.*load_from='):
        check_training_checkpoint(load_from_lisakit_safe(str(path)), str(path))


def test_unsafe_checkpoint_error_is_both_kinds(tmp_path, monkeypatch):
    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth') as err:
        load_from_lisakit_safe(str(path))
    assert isinstance(err.value, CheckpointError) and isinstance(err.value, pickle.UnpicklingError)


def _age(path, seconds_ago: float) -> None:
    import time

    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def test_dangling_last_checkpoint_falls_back_to_the_newest_intact(tmp_path, caplog):
    old, new = tmp_path / 'epoch_1.pth', tmp_path / 'epoch_2.pth'
    _training_ckpt(old)
    _training_ckpt(new)
    _age(old, 20)
    _age(new, 10)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))  # never written
    import logging

    assert find_resume_checkpoint(str(tmp_path), logging.getLogger('resume')) == str(new)
    out = caplog.text
    assert 'Skipping checkpoint' in out and "epoch_3.pth': it does not exist" in out
    assert f"Resuming from '{new}'" in out


def test_broken_newest_checkpoints_are_skipped(tmp_path):
    good, empty, cut = (tmp_path / f'{n}.pth' for n in ('epoch_1', 'iter_12', 'epoch_2'))
    _training_ckpt(good)
    empty.write_bytes(b'')
    _training_ckpt(cut)
    cut.write_bytes(cut.read_bytes()[:100])
    for i, path in enumerate((good, empty, cut)):
        _age(path, 30 - 10 * i)
    (tmp_path / 'last_checkpoint').write_text(str(cut))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    for path in (good, empty, cut):
        path.unlink()
    assert find_resume_checkpoint(str(tmp_path)) is None
