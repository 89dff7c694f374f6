"""Multi-target and no-target queries of the shapes dataset.

Scenes for these queries may repeat colours and kinds. A query names a colour ("Segment
all the red shapes.") or a kind ("Segment every circle."); its targets are all the
shapes that have it (1 to ``max_targets``). The no-target queries use the same words
for a colour or kind that no shape in the image has, so only looking at the image
tells a rejection from a target. Target order (per-object mode) is left to right by
the mask's leftmost pixel, then top to bottom (:func:`order_left_to_right`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .coco_masks import order_left_to_right  # noqa: F401 (the per-object order, re-exported)

#: Sentences of the multi-target and no-target queries.
ALL_COLOR_SENTENCE = 'Segment all the {color} shapes.'
EVERY_KIND_SENTENCE = 'Segment every {kind}.'
#: Query types: (attribute the text names, whether the named value is absent).
MULTI_QUERY_TYPES = dict(
    all_color=('color', False),
    every_kind=('kind', False),
    absent_color=('color', True),
    absent_kind=('kind', True),
)
SENTENCES = dict(color=ALL_COLOR_SENTENCE, kind=EVERY_KIND_SENTENCE)
#: Default most targets of one query, and shapes per multi-target scene.
DEFAULT_MAX_TARGETS = 3
MAX_SCENE_SHAPES = 5


def multi_corpus(colors, kinds) -> list[str]:
    """Every text the multi / no-target queries can produce."""
    return [ALL_COLOR_SENTENCE.format(color=c) for c in colors] + [
        EVERY_KIND_SENTENCE.format(kind=k) for k in kinds
    ]


def plan_scene(
    rng: np.random.Generator,
    qtype: str,
    values: dict[str, list[str]],
    num_shapes: tuple[int, int],
    max_targets: int,
) -> tuple[str, str, list[dict]]:
    """Choose the named value and the attributes of every shape of a scene.

    Args:
        rng: The sample's generator.
        qtype: A key of :data:`MULTI_QUERY_TYPES`.
        values: ``dict(color=[...], kind=[...])``: the possible values.
        num_shapes: Inclusive (min, max) shapes of the scene.
        max_targets: Most targets of a target query.

    Returns:
        ``(attribute, named value, [dict(color=, kind=), ...])``; targets come first.
    """
    attr, absent = MULTI_QUERY_TYPES[qtype]
    other_attr = 'kind' if attr == 'color' else 'color'
    named = str(rng.choice(values[attr]))
    others = [v for v in values[attr] if v != named]
    low, high = num_shapes
    total = int(rng.integers(low, high + 1))
    num_targets = 0 if absent else int(rng.integers(1, min(max_targets, total) + 1))
    picked = [named] * num_targets + [
        str(v) for v in rng.choice(others, size=total - num_targets, replace=True)
    ]
    other_values = rng.choice(values[other_attr], size=total, replace=True)
    shapes = [{attr: v, other_attr: str(o)} for v, o in zip(picked, other_values)]
    return attr, named, shapes


def targets_of(shapes: list[dict], attr: str, named: str) -> list[int]:
    """Indices of the placed shapes whose ``attr`` is ``named``."""
    return [i for i, s in enumerate(shapes) if s[attr] == named]


def check_multi(max_targets: int, num_shapes: tuple[int, int], weights: Optional[dict]) -> None:
    """Raise ``ValueError`` for settings the multi-target scenes cannot meet."""
    if not any((weights or {}).get(q, 0) > 0 for q in MULTI_QUERY_TYPES):
        return
    if max_targets < 1:
        raise ValueError(f'max_targets={max_targets}; expected >= 1.')
    if num_shapes[1] > MAX_SCENE_SHAPES:
        raise ValueError(f'num_shapes={num_shapes}: at most {MAX_SCENE_SHAPES} shapes fit.')
