"""``on_error``: fail fast on a bad sample, or skip it with a counted, logged warning."""

from __future__ import annotations

import logging
from typing import Any

from mmengine.logging import print_log

ON_ERROR = ('raise', 'skip')
#: Exceptions that mean "this sample's data is bad" (raised with a message naming the
#: file); anything else is a bug and always propagates.
DATA_ERRORS = (ValueError, FileNotFoundError)


def check_on_error(on_error: str, owner: str) -> None:
    """Raise ValueError unless ``on_error`` is one of :data:`ON_ERROR`."""
    if on_error not in ON_ERROR:
        raise ValueError(f'{owner}: on_error={on_error!r}; expected one of {ON_ERROR}.')


class SkipBadSamplesMixin:
    """Bad-sample handling for a ``BaseDataset`` (list it before ``BaseDataset``) that
    sets ``on_error`` and ``skipped`` (a list) before loading.

    At load time, :meth:`_bad` raises (``'raise'``) or records ``(location, reason)``
    in ``skipped`` (``'skip'``); :meth:`_log_skipped` logs the count. In training
    with ``'skip'``, a sample whose ``get_data_info`` or pipeline raises a data error
    (undecodable image, mask outside the image, ...) is logged with its reason,
    counted in ``runtime_skips`` (per process) and replaced by another one (mmengine
    refetches when ``prepare_data`` returns None). Evaluation (``test_mode``) always
    raises.
    """

    on_error: str = 'raise'
    runtime_skips: int = 0

    def _init_on_error(self, on_error: str) -> None:
        """Check and set ``on_error``; start the list of ``(location, reason)`` of every
        item skipped while loading (``skipped``). Call before ``BaseDataset.__init__``."""
        check_on_error(on_error, type(self).__name__)
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []

    def _bad(self, err: Exception, location: str) -> None:
        """Raise ``err`` (``'raise'``) or record it for ``location`` (``'skip'``)."""
        if self.on_error == 'raise':
            raise err
        self.skipped.append((str(location), str(err)))

    def _log_skipped(self, what: str) -> None:
        """Log how many bad ``what`` were skipped while loading."""
        if self.skipped:
            print_log(
                f'{type(self).__name__} skipped {len(self.skipped)} bad {what}, e.g. '
                f'{self.skipped[0][1]}',
                logger='current',
                level=logging.WARNING,
            )

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output, or None for a bad sample in ``'skip'`` training mode."""
        if self.on_error == 'raise' or self.test_mode:
            return super().prepare_data(idx)
        try:
            return super().prepare_data(idx)
        except DATA_ERRORS as err:
            self.runtime_skips += 1
            print_log(
                f'{type(self).__name__}: skipped sample {idx} ({err}); '
                f'{self.runtime_skips} skipped in this process so far.',
                logger='current',
                level=logging.WARNING,
            )
            return None
