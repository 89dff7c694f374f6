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
