"""Atomic file writes: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from typing import Any, Callable

#: Permissions of written files (mkstemp creates 0600).
FILE_MODE = 0o644
#: Fault injection (tools/analysis_tools/fault_injection.py): when set to ``N``, the
#: process SIGKILLs its own process group halfway through writing its N-th checkpoint
#: (``.pth``) file, leaving a half-written temporary file behind, as a real kill would.
KILL_IN_SAVE_ENV = 'LISAKIT_FAULT_KILL_IN_SAVE'
_checkpoint_puts = 0


def _fsync(path: str) -> None:
    """Flush ``path`` (a file or a folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync folders
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then atomically rename the result to ``path``.

    The temporary file is flushed to disk before the rename and the folder after it,
    so ``path`` holds either the old or the complete new content, also after a power
    loss. On any error the temporary file is removed and ``path`` is left as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(folder)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(text: str, path: str) -> None:
    """Write ``text`` to ``path`` atomically (e.g. the work dir's ``last_checkpoint``)."""

    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)

    atomic_write(path, write)


def _write_bytes(tmp: str, obj: bytes, path: str) -> None:
    """Write ``obj`` to ``tmp``; the fault-injection kill happens here (see
    :data:`KILL_IN_SAVE_ENV`)."""
    global _checkpoint_puts
    kill_at = os.environ.get(KILL_IN_SAVE_ENV)
    if kill_at and path.endswith('.pth'):
        _checkpoint_puts += 1
        if _checkpoint_puts == int(kill_at):
            with open(tmp, 'wb') as f:
                f.write(obj[: len(obj) // 2])
                f.flush()
            os.killpg(os.getpgid(0), signal.SIGKILL)
    with open(tmp, 'wb') as f:
        f.write(obj)


def dump_json_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=2)

    atomic_write(path, write)


def register_atomic_local_backend() -> None:
    """Make mmengine write local files (checkpoints included) atomically.

    Replaces mmengine's ``local`` file backend by a subclass whose ``put`` writes a
    temporary file in the same folder and renames it over the target, so an
    interrupted save never leaves a truncated checkpoint.
    """
    from mmengine.fileio import LocalBackend, register_backend

    class AtomicLocalBackend(LocalBackend):
        """mmengine's ``LocalBackend`` with atomic ``put``."""

        def put(self, obj: bytes, filepath) -> None:
            atomic_write(str(filepath), lambda tmp: _write_bytes(tmp, obj, str(filepath)))

    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
