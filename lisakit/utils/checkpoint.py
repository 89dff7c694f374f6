"""Checkpoint helpers: SAM weights, weights-only-safe loading, integrity checks, resume lookup."""

from __future__ import annotations

import glob
import os
import pickle
import types
import zipfile
from typing import Optional

import torch
from torch import nn


def load_sam_weights(module: nn.Module, checkpoint: str, prefix: str) -> None:
    """Load the ``prefix``-ed part of a SAM checkpoint strictly into ``module``.

    Accepts full SAM checkpoints (keys ``image_encoder.*``, ``prompt_encoder.*``,
    ``mask_decoder.*``) and files that hold only the module's own keys.

    Args:
        module: Target module (e.g. an ``ImageEncoderViT``).
        checkpoint: Local path of the checkpoint.
        prefix: Key prefix of the part to load, e.g. ``'image_encoder.'``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If keys are missing/unexpected or shapes differ (e.g. another SAM size).
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(
            f'SAM checkpoint {checkpoint!r} not found. Download it '
            '(e.g. sam_vit_h_4b8939.pth) and give its local path.'
        )
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = '; '.join(
            f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
            for k in wrong[:3]
        )
        raise ValueError(
            f'{checkpoint!r} does not match the configured SAM {prefix.rstrip(".")}: '
            f'{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:3]}, {len(wrong)} shape mismatches [{detail}]. Check that the '
            'config arch (vit_h / vit_l / vit_b) matches the checkpoint.'
        )
    module.load_state_dict(state, strict=True)


#: Globals that may appear in lisakit / mmengine checkpoints: tensors, containers,
#: numpy arrays and scalars (metrics), and mmengine's ``HistoryBuffer`` (message hub).
SAFE_GLOBALS = frozenset(
    {
        ('collections', 'OrderedDict'),
        ('torch._utils', '_rebuild_tensor_v2'),
        ('torch._utils', '_rebuild_parameter'),
        ('torch', 'Size'),
        ('_codecs', 'encode'),
        ('numpy', 'dtype'),
        ('numpy', 'ndarray'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', 'scalar'),
        ('mmengine.logging.history_buffer', 'HistoryBuffer'),
    }
)
#: Env var that turns on full (unsafe) unpickling for checkpoints you trust.
UNSAFE_LOAD_ENV = 'LISAKIT_UNSAFE_LOAD'


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's statistics methods (pickled by name)."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in ('min', 'max', 'mean', 'current'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'Refusing getattr({obj!r}, {name!r}) while loading a checkpoint.')


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only builds the types in :data:`SAFE_GLOBALS`."""

    def find_class(self, module: str, name: str):
        if (module, name) in (('builtins', 'getattr'), ('__builtin__', 'getattr')):
            return _history_buffer_getattr
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith('numpy.dtypes') and name.endswith('DType'):
            return super().find_class(module, name)
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'The checkpoint contains the global {module}.{name}, which lisakit does not load '
            f'by default because unpickling it could run arbitrary code. If you trust the file, '
            f'set {UNSAFE_LOAD_ENV}=1 to load it anyway.'
        )


#: A ``pickle_module`` for ``torch.load`` that uses :class:`SafeUnpickler`.
safe_pickle = types.SimpleNamespace(
    Unpickler=SafeUnpickler, load=pickle.load, __name__='lisakit_safe_pickle'
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: empty, truncated, corrupted or foreign.

    The message names the file, what is wrong and what to do instead.
    """


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holding globals outside :data:`SAFE_GLOBALS` (refused by default)."""


#: What to do about a broken checkpoint, appended to every :class:`CheckpointError`.
BROKEN_FIX = (
    'It was cut short (a crash or a full disk while writing) or was written by another '
    'tool; use another checkpoint (`tools/train.py CONFIG --resume` without a path picks '
    'the newest intact one in the work dir).'
)
#: Start of every zip archive (``torch.save``'s format since torch 1.6).
ZIP_MAGIC = b'PK\x03\x04'
#: Start of a pickle stream (protocol 2+): torch's legacy format or a plain pickle.
PICKLE_MAGIC = b'\x80'


def checkpoint_problem(path: str) -> Optional[str]:
    """What is wrong with the checkpoint at ``path``; ``None`` if it looks intact.

    Checks the container only (no unpickling): an empty file, a zip archive whose
    directory or data fail to read (truncated / corrupted; every entry's CRC is
    checked), a zip that holds no ``data.pkl`` (not written by ``torch.save``), or a
    file that is neither a zip nor a pickle. A folder (DeepSpeed / sharded FSDP
    checkpoint) is accepted when it is not empty. Legacy (non-zip) torch files are
    accepted here and checked when they load.

    Args:
        path: Local path of the checkpoint.
    """
    if os.path.isdir(path):
        return None if os.listdir(path) else 'is an empty folder'
    if not os.path.isfile(path):
        return 'does not exist'
    if os.path.getsize(path) == 0:
        return 'is empty (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(len(ZIP_MAGIC))
    if head.startswith(PICKLE_MAGIC):
        return None  # torch's legacy format or a plain pickle: judged when loaded
    if head != ZIP_MAGIC:
        return f'is not a PyTorch checkpoint (starts with {head!r}, not a zip archive)'
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        size = os.path.getsize(path)
        return f'is truncated or corrupted ({size} bytes; zip archive unreadable: {err})'
    if bad is not None:
        return f'is corrupted (entry {bad!r} fails its CRC check)'
    if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
        return 'is a zip archive but not a PyTorch checkpoint (no data.pkl inside)'
    return None


def verify_checkpoint(path: str) -> None:
    """Raise :class:`CheckpointError` if :func:`checkpoint_problem` finds one.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: Naming the file, the problem and the fix.
    """
    problem = checkpoint_problem(path)
    if problem == 'does not exist':
        raise FileNotFoundError(f'Checkpoint {path!r} does not exist.')
    if problem is not None:
        raise CheckpointError(f'Checkpoint {path!r} {problem}. {BROKEN_FIX}')


def load_from_lisakit_safe(filename: str, map_location=None):
    """Load a local checkpoint with restricted unpickling (see :class:`SafeUnpickler`).

    The file is checked first (:func:`verify_checkpoint`), so an empty, truncated or
    foreign file is reported as such with its path, not as a ``torch`` stack trace.

    Args:
        filename: Local checkpoint path.
        map_location: As in ``torch.load``.

    Raises:
        FileNotFoundError: If the file does not exist.
        CheckpointError: If it is empty, truncated, corrupted or not a checkpoint.
        UnsafeCheckpointError: If it holds globals outside the allow-list (also a
            ``pickle.UnpicklingError``).
    """
    verify_checkpoint(filename)
    unsafe = os.environ.get(UNSAFE_LOAD_ENV) == '1'
    kwargs = dict(map_location=map_location, weights_only=False)
    if not unsafe:
        kwargs['pickle_module'] = safe_pickle
    try:
        return torch.load(filename, **kwargs)
    except pickle.UnpicklingError as err:
        if 'lisakit does not load' in str(err):
            raise UnsafeCheckpointError(f'Checkpoint {filename!r}: {err}') from err
        raise CheckpointError(
            f'Checkpoint {filename!r} is not a PyTorch checkpoint lisakit can read ({err}). '
            f'{BROKEN_FIX}'
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        if 'magic number' in str(err):
            raise CheckpointError(
                f'Checkpoint {filename!r} is not a PyTorch checkpoint (a pickle of something '
                f'else: {err}). {BROKEN_FIX}'
            ) from err
        raise CheckpointError(
            f'Checkpoint {filename!r} could not be read ({type(err).__name__}: {err}). {BROKEN_FIX}'
        ) from err


def check_training_checkpoint(checkpoint, path: str) -> None:
    """Check that a loaded object is an mmengine training checkpoint.

    Raises:
        CheckpointError: If it is not a dict with ``state_dict`` and ``meta`` (a
            foreign pickle, or a weights-only file that cannot resume training).
    """
    if not isinstance(checkpoint, dict) or 'meta' not in checkpoint:
        kind = type(checkpoint).__name__
        keys = [str(k) for k in checkpoint][:5] if isinstance(checkpoint, dict) else []
        raise CheckpointError(
            f'Checkpoint {path!r} is not a lisakit training checkpoint (a {kind} with keys '
            f'{keys}, no "meta"): it cannot resume training. Resume from a file written by '
            'tools/train.py, or start a new run with load_from= to take only its weights.'
        )


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The path recorded in ``work_dir/last_checkpoint``; ``None`` if there is none."""
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        named = f.read().strip()
    if named and not os.path.isabs(named) and not os.path.exists(named):
        named = os.path.join(work_dir, os.path.basename(named))
    return named or None


#: File in the work dir naming the latest checkpoint (mmengine's convention).
LAST_CHECKPOINT = 'last_checkpoint'


def find_resume_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The newest intact checkpoint of ``work_dir`` to resume from.

    Tries the file named by ``last_checkpoint`` first, then every ``*.pth`` in the
    work dir, newest first (modification time). Files that are missing, empty,
    truncated or not checkpoints are skipped with a warning naming them.

    Args:
        work_dir: The run's work dir.
        logger: Where warnings go (an mmengine logger); ``print_log`` if None.

    Returns:
        The path, or ``None`` when the work dir holds no intact checkpoint.
    """
    from mmengine.logging import print_log

    def warn(msg: str) -> None:
        print_log(msg, logger=logger or 'current', level=30)  # logging.WARNING

    named = read_last_checkpoint(work_dir)
    found = glob.glob(os.path.join(work_dir, '*.pth'))
    found.sort(key=os.path.getmtime, reverse=True)
    candidates = ([named] if named else []) + [p for p in found if p != named]
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if named and path != named:
                warn(
                    f'Resuming from {path!r}, the newest intact checkpoint in {work_dir!r}, '
                    f'instead of {named!r} named by {LAST_CHECKPOINT}.'
                )
            return path
        warn(f'Skipping checkpoint {path!r}: it {problem}.')
    return None


def register_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints through :func:`load_from_lisakit_safe`.

    mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
    then refuses its own checkpoints (HistoryBuffer, numpy). This replaces
    mmengine's local-file scheme by lisakit's restricted loader.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_lisakit_safe)
