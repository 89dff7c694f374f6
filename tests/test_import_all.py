"""Every lisakit module imports in a fresh interpreter (no optional extras needed)."""

import subprocess
import sys

from tool_runner import REPO

#: Imports each module of lisakit in one fresh process and prints those that fail.
SCRIPT = """
import importlib, pkgutil, sys, traceback
import lisakit
failed, names = [], [m.name for m in pkgutil.walk_packages(lisakit.__path__, 'lisakit.')]
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ': ' + traceback.format_exc().splitlines()[-1])
print(len(names), 'modules')
print('\\n'.join(failed))
sys.exit(1 if failed else 0)
"""
#: Optional extras that no lisakit module may need at import time.
OPTIONAL = ('gradio', 'selenium', 'tensorboard', 'deepspeed')


def test_every_module_imports_without_optional_extras():
    blocker = ''.join(f'sys.modules[{name!r}] = None\n' for name in OPTIONAL)  # ImportError
    code = 'import sys\n' + blocker + SCRIPT
    proc = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    count = int(proc.stdout.split(' modules')[0].split()[-1])
    assert count > 50, proc.stdout
