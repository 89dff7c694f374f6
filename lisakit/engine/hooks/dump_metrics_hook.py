"""Write the test metrics to a JSON file (``tools/test.py --out``)."""

from __future__ import annotations

from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from lisakit.registry import HOOKS
from lisakit.utils.io import dump_json_atomic


@HOOKS.register_module()
class DumpMetricsHook(Hook):
    """Dump the metrics of a test run to ``out_file`` as JSON.

    Args:
        out_file: Destination path (``.json``).
    """

    def __init__(self, out_file: str) -> None:
        if not out_file.endswith('.json'):
            raise ValueError(f'--out must name a .json file, got {out_file!r}.')
        self.out_file = out_file

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        if is_main_process():
            dump_json_atomic({k: float(v) for k, v in (metrics or {}).items()}, self.out_file)
