"""Atomic file writes: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

#: Permissions of written files (mkstemp creates 0600).
FILE_MODE = 0o644


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then atomically rename the result to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
            def write(tmp: str) -> None:
                with open(tmp, 'wb') as f:
                    f.write(obj)

            atomic_write(str(filepath), write)

    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
