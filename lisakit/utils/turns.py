"""Checks of backbone-neutral conversation turns, shared by datasets and processors."""

from __future__ import annotations

from typing import Sequence

from .constants import IMAGE_TOKEN


def check_image_placeholders(turns: Sequence[tuple[str, str]], name: str = 'sample') -> None:
    """One ``<image>`` in the first question, none in the later ones.

    Raises:
        ValueError: Naming ``name``, the question and what it must (not) contain.
    """
    for k, (question, _) in enumerate(turns):
        if question.count(IMAGE_TOKEN) != (1 if k == 0 else 0):
            where = 'the question must' if k == 0 else f'question {k + 1} must not'
            count = 'exactly one' if k == 0 else 'any'
            raise ValueError(f'{name}: {where} contain {count} {IMAGE_TOKEN!r}, got {question!r}.')
