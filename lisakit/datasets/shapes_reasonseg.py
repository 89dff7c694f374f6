"""A procedurally generated reasoning-segmentation dataset of coloured shapes.

Every image holds 2-4 shapes of distinct colours and distinct kinds; every query
names exactly one of them, and only reading the query tells which: by colour
("the red shape"), kind ("the triangle"), position ("which shape is closest to the
left edge?"), size ("which shape is the largest?"), an implicit property ("which
shape has the most corners?") or a relation ("which shape is nearest to the blue
one?"). Samples are deterministic functions of (seed, split, index), so train and
val differ and runs repeat exactly. Images and masks are rendered on access.

Multi-target and no-target queries (:mod:`lisakit.datasets.shapes_multi`, off by
default): "Segment all the red shapes." / "Segment every circle." name all the shapes
of a colour or kind, and the same words for a colour or kind absent from the image
name none. ``target_mode='merged'`` gives one ``<SEG>`` and the union of the targets
(LISA on gRefCOCO), ``'per_object'`` one ``<SEG>`` per target, left to right. A
no-target query is answered with a rejection text and no mask in training; in
``test_mode`` it keeps the evaluation answer (``<SEG>.``) and one all-zero mask, as
gRefCOCO's no-target expressions in LISA, so the metric sees what is predicted.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image, ImageDraw

from lisakit.registry import DATASETS
from lisakit.utils.constants import SEG_TOKEN

from .shapes_multi import (
    DEFAULT_MAX_TARGETS,
    MULTI_QUERY_TYPES,
    SENTENCES,
    check_multi,
    multi_corpus,
    order_left_to_right,
    plan_scene,
    targets_of,
)
from .templates import (
    ANSWER_LIST,
    LONG_QUESTION_LIST,
    MULTI_ANSWER_LIST,
    REJECT_ANSWER_LIST,
    SHORT_QUESTION_LIST,
    check_templates,
    fill_segs,
)

#: In a multi / no-target answer template: the colour or kind the query names
#: (``'{named}: [REJ].'`` makes the answer restate it before deciding).
NAMED_PLACEHOLDER = '{named}'
#: Shape kinds and their number of corners.
SHAPE_CORNERS = {'circle': 0, 'triangle': 3, 'square': 4, 'pentagon': 5, 'hexagon': 6}
#: Colour names and RGB values.
COLORS = {
    'red': (220, 50, 50),
    'green': (50, 180, 70),
    'blue': (50, 90, 230),
    'yellow': (235, 215, 50),
    'purple': (160, 70, 200),
}
BACKGROUND = (30, 30, 30)
SPLIT_CODES = {'train': 0, 'val': 1, 'test': 2}
TARGET_MODES = ('merged', 'per_object')
#: Shape radius range as a fraction of the image side, and the gap between shapes.
RADIUS_RANGE = (0.09, 0.17)
MIN_SHAPE_GAP = 2
#: A query is used only if its answer beats the runner-up by this many pixels.
MIN_MARGIN = 3
MIN_SHAPES_FOR_RELATION = 3
MAX_PLACEMENT_TRIES = 200
MAX_SCENE_TRIES = 1000

POSITION_SENTENCES = {
    'left': 'Which shape is closest to the left edge of the image?',
    'right': 'Which shape is closest to the right edge of the image?',
    'top': 'Which shape is closest to the top of the image?',
    'bottom': 'Which shape is closest to the bottom of the image?',
}
SIZE_SENTENCES = {
    'largest': 'Which shape is the largest?',
    'smallest': 'Which shape is the smallest?',
}
CORNER_SENTENCES = {
    'most': 'Which shape has the most corners?',
    'fewest': 'Which shape has the fewest corners?',
}
RELATION_SENTENCE = 'Which shape is nearest to the {color} one?'
#: Default mix of query types.
DEFAULT_QUERY_WEIGHTS = dict(
    color=1.0, shape=1.0, position=1.0, size=1.0, corners=1.0, relation=1.0
)


def corpus() -> list[str]:
    """Every query text the dataset can produce (for building a tokenizer)."""
    texts = [f'{c} shape' for c in COLORS] + list(SHAPE_CORNERS)
    texts += list(POSITION_SENTENCES.values()) + list(SIZE_SENTENCES.values())
    texts += list(CORNER_SENTENCES.values())
    return texts + [RELATION_SENTENCE.format(color=c) for c in COLORS]


def multi_target_corpus() -> list[str]:
    """Every text of the multi / no-target queries and their default answers (the
    tiny multi-target config adds these words to the tokenizer)."""
    texts = multi_corpus(COLORS, SHAPE_CORNERS) + MULTI_ANSWER_LIST + REJECT_ANSWER_LIST
    return [t.replace('{segs}', '') for t in texts]


def _margin_pick(values: np.ndarray, largest: bool) -> Optional[int]:
    """Index of the extreme value if it beats the runner-up by ``MIN_MARGIN``."""
    order = np.argsort(values)
    best, second = (order[-1], order[-2]) if largest else (order[0], order[1])
    return int(best) if abs(values[best] - values[second]) >= MIN_MARGIN else None


# Each query maker returns (target index, text, is_sentence) or None if ambiguous.
def _query_color(shapes, rng):
    i = int(rng.integers(len(shapes)))
    return i, f'{shapes[i]["color"]} shape', False


def _query_shape(shapes, rng):
    i = int(rng.integers(len(shapes)))
    return i, shapes[i]['kind'], False


def _query_position(shapes, rng):
    side = str(rng.choice(list(POSITION_SENTENCES)))
    key = 'cx' if side in ('left', 'right') else 'cy'
    i = _margin_pick(np.array([s[key] for s in shapes]), largest=side in ('right', 'bottom'))
    return None if i is None else (i, POSITION_SENTENCES[side], True)


def _query_size(shapes, rng):
    which = str(rng.choice(list(SIZE_SENTENCES)))
    i = _margin_pick(np.array([s['r'] for s in shapes]), largest=which == 'largest')
    return None if i is None else (i, SIZE_SENTENCES[which], True)


def _query_corners(shapes, rng):
    which = str(rng.choice(list(CORNER_SENTENCES)))
    corners = [SHAPE_CORNERS[s['kind']] for s in shapes]
    i = int(np.argmax(corners) if which == 'most' else np.argmin(corners))
    return i, CORNER_SENTENCES[which], True


def _query_relation(shapes, rng):
    if len(shapes) < MIN_SHAPES_FOR_RELATION:
        return None
    ref = int(rng.integers(len(shapes)))
    dist = np.array(
        [np.hypot(s['cx'] - shapes[ref]['cx'], s['cy'] - shapes[ref]['cy']) for s in shapes]
    )
    dist[ref] = np.inf
    i = _margin_pick(-dist, largest=True)
    text = RELATION_SENTENCE.format(color=shapes[ref]['color'])
    return None if i is None else (i, text, True)


QUERY_MAKERS: dict[str, Callable] = dict(
    color=_query_color,
    shape=_query_shape,
    position=_query_position,
    size=_query_size,
    corners=_query_corners,
    relation=_query_relation,
)


def _place_shapes(rng: np.random.Generator, img_size: int, num: int) -> list[dict]:
    """Non-overlapping shapes of distinct colours and kinds."""
    kinds = rng.choice(list(SHAPE_CORNERS), size=num, replace=False)
    colors = rng.choice(list(COLORS), size=num, replace=False)
    attrs = [dict(kind=str(k), color=str(c)) for k, c in zip(kinds, colors)]
    return place_shapes(rng, img_size, attrs)


def place_shapes(rng: np.random.Generator, img_size: int, attrs: Sequence[dict]) -> list[dict]:
    """Place shapes of the given ``kind`` / ``color`` without overlap (a shape that
    finds no room in ``MAX_PLACEMENT_TRIES`` draws is left out)."""
    shapes: list[dict] = []
    for attr in attrs:
        for _ in range(MAX_PLACEMENT_TRIES):
            r = float(rng.uniform(*RADIUS_RANGE) * img_size)
            cx, cy = rng.uniform(r + 1, img_size - r - 1, size=2)
            if all(
                np.hypot(cx - s['cx'], cy - s['cy']) > r + s['r'] + MIN_SHAPE_GAP for s in shapes
            ):
                shapes.append(
                    dict(
                        kind=attr['kind'],
                        color=attr['color'],
                        cx=float(cx),
                        cy=float(cy),
                        r=r,
                        angle=float(rng.uniform(0, 2 * np.pi)),
                    )
                )
                break
    return shapes


def _outline(shape: dict) -> list[tuple[float, float]]:
    """Polygon vertices of a shape (a circle is returned as an empty list)."""
    n = SHAPE_CORNERS[shape['kind']]
    angles = shape['angle'] + 2 * np.pi * np.arange(n) / max(n, 1)
    return [
        (shape['cx'] + shape['r'] * np.cos(a), shape['cy'] + shape['r'] * np.sin(a)) for a in angles
    ]


def _draw(draw: ImageDraw.ImageDraw, shape: dict, fill) -> None:
    if shape['kind'] == 'circle':
        cx, cy, r = shape['cx'], shape['cy'], shape['r']
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_outline(shape), fill=fill)


def render_scene(shapes: Sequence[dict], img_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render an RGB image (H, W, 3) and one uint8 mask per shape (K, H, W)."""
    image = Image.new('RGB', (img_size, img_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    masks = []
    for shape in shapes:
        _draw(draw, shape, COLORS[shape['color']])
        mask = Image.new('L', (img_size, img_size), 0)
        _draw(ImageDraw.Draw(mask), shape, 1)
        masks.append(np.asarray(mask))
    return np.array(image), np.stack(masks)


@DATASETS.register_module()
class ShapesReasonSegDataset(BaseDataset):
    """Generated images of coloured shapes with queries that need reading.

    Args:
        num_samples: Number of samples in the split.
        split: ``'train'``, ``'val'`` or ``'test'`` (different scenes per split).
        seed: Base seed; the same seed gives the same samples.
        img_size: Image side in pixels.
        num_shapes: Inclusive (min, max) shapes per image (at most 5).
        query_weights: Relative frequency of each query type (keys of
            :data:`QUERY_MAKERS`); defaults to uniform.
        answers: Answer templates with one ``<SEG>`` each (LISA's list for training;
            use ``['<SEG>.']`` for LISA-style validation).
        short_questions: Templates with ``{class_name}``.
        long_questions: Templates with ``{sent}``.
        target_mode: Multi-target queries: ``'merged'`` (one ``<SEG>``, the union of
            the targets) or ``'per_object'`` (one ``<SEG>`` per target, left to right).
        max_targets: Most targets of a multi-target query.
        multi_answers: Per-object answers for 2+ targets, with ``{segs}``.
        reject_answers: Training answers to a no-target query (no ``<SEG>``; e.g. GSVA's
            ``['[REJ].']`` with the model's rejection token); None: LISA's form, an
            ``answers`` template and one all-zero mask. In multi / no-target answers
            (``answers``, ``multi_answers``, ``reject_answers``) ``{named}`` becomes the
            named colour or kind.
        **kwargs: ``pipeline``, ``indices`` (e.g. ``max_train_samples``),
            ``test_mode``, ``lazy_init``, ... of mmengine's ``BaseDataset``.
    """

    METAINFO = dict(classes=('shape',))

    def __init__(
        self,
        num_samples: int = 1000,
        split: str = 'train',
        seed: int = 0,
        img_size: int = 64,
        num_shapes: Sequence[int] = (2, 4),
        query_weights: Optional[dict] = None,
        answers: Sequence[str] = tuple(ANSWER_LIST),
        short_questions: Sequence[str] = tuple(SHORT_QUESTION_LIST),
        long_questions: Sequence[str] = tuple(LONG_QUESTION_LIST),
        target_mode: str = 'merged',
        max_targets: int = DEFAULT_MAX_TARGETS,
        multi_answers: Sequence[str] = tuple(MULTI_ANSWER_LIST),
        reject_answers: Optional[Sequence[str]] = tuple(REJECT_ANSWER_LIST),
        **kwargs,
    ) -> None:
        if target_mode not in TARGET_MODES:
            raise ValueError(f'target_mode={target_mode!r}; expected one of {TARGET_MODES}.')
        check_templates(
            type(self).__name__, multi_answers=multi_answers, reject_answers=reject_answers or ()
        )
        if split not in SPLIT_CODES:
            raise ValueError(f'split={split!r}; expected one of {sorted(SPLIT_CODES)}.')
        weights = dict(DEFAULT_QUERY_WEIGHTS if query_weights is None else query_weights)
        unknown = set(weights) - set(QUERY_MAKERS) - set(MULTI_QUERY_TYPES)
        if unknown:
            raise ValueError(
                f'query_weights has unknown types {sorted(unknown)}; expected '
                f'keys from {sorted(QUERY_MAKERS) + sorted(MULTI_QUERY_TYPES)}.'
            )
        if any(SEG_TOKEN not in a for a in answers):
            raise ValueError(f'Every answer template must contain {SEG_TOKEN!r}; got {answers}.')
        lo, hi = num_shapes
        if not 2 <= lo <= hi <= len(SHAPE_CORNERS):
            raise ValueError(
                f'num_shapes={num_shapes} must satisfy 2 <= min <= max <= {len(SHAPE_CORNERS)}.'
            )
        if weights.get('relation', 0) > 0 and hi < MIN_SHAPES_FOR_RELATION:
            raise ValueError(
                f'relation queries need {MIN_SHAPES_FOR_RELATION} shapes; raise '
                f'num_shapes[1] or set query_weights["relation"] = 0.'
            )
        check_multi(max_targets, (lo, hi), weights)
        self.target_mode, self.max_targets = target_mode, max_targets
        self.multi_answers = list(multi_answers)
        self.reject_answers = None if reject_answers is None else list(reject_answers)
        self.num_samples, self.split, self.seed = num_samples, split, seed
        self.img_size, self.num_shapes = img_size, (lo, hi)
        names = sorted(weights)
        probs = np.array([weights[n] for n in names], dtype=float)
        self.query_types, self.query_probs = names, probs / probs.sum()
        self.answers, self.short_questions = list(answers), list(short_questions)
        self.long_questions = list(long_questions)
        super().__init__(ann_file='', **kwargs)

    def _make_sample(self, idx: int) -> dict:
        rng = np.random.default_rng([self.seed, SPLIT_CODES[self.split], idx])
        # draw the query type first so the mix follows query_weights; redraw scenes
        # until the query has a unique answer
        qtype = str(rng.choice(self.query_types, p=self.query_probs))
        if qtype in MULTI_QUERY_TYPES:
            return self._make_multi_sample(idx, rng, qtype)
        for _ in range(MAX_SCENE_TRIES):
            low, high = self.num_shapes
            shapes = _place_shapes(rng, self.img_size, int(rng.integers(low, high + 1)))
            query = QUERY_MAKERS[qtype](shapes, rng) if len(shapes) >= 2 else None
            if query is not None:
                break
        else:
            raise RuntimeError(
                f'No scene with an unambiguous {qtype!r} query after '
                f'{MAX_SCENE_TRIES} tries; check num_shapes / img_size.'
            )
        target, text, is_sentence = query
        if is_sentence:
            question = str(rng.choice(self.long_questions)).format(sent=text)
        else:
            question = str(rng.choice(self.short_questions)).format(class_name=text)
        return dict(
            sample_idx=idx,
            img_path=None,
            shapes=shapes,
            target=target,
            question=question,
            answer=str(rng.choice(self.answers)),
            query_type=qtype,
            is_sentence=is_sentence,
            num_targets=1,
            no_target=False,
        )

    @property
    def _empty_target(self) -> bool:
        """Whether a no-target query keeps a ``<SEG>`` and one all-zero mask (evaluation,
        or ``reject_answers=None``) instead of a rejection text and no mask."""
        return self.test_mode or self.reject_answers is None

    def _multi_answer(self, rng: np.random.Generator, num_targets: int, named: str) -> str:
        """The answer to a multi / no-target query (see the module docstring); a
        ``{named}`` in the template becomes the colour or kind the query names."""
        if num_targets == 0 and not self._empty_target:
            answer = str(rng.choice(self.reject_answers))
        elif self.target_mode == 'merged' or num_targets <= 1:
            answer = str(rng.choice(self.answers))
        else:
            answer = fill_segs(str(rng.choice(self.multi_answers)), num_targets)
        return answer.replace(NAMED_PLACEHOLDER, named)

    def _make_multi_sample(self, idx: int, rng: np.random.Generator, qtype: str) -> dict:
        values = dict(color=list(COLORS), kind=list(SHAPE_CORNERS))
        for _ in range(MAX_SCENE_TRIES):
            attr, named, attrs = plan_scene(rng, qtype, values, self.num_shapes, self.max_targets)
            shapes = place_shapes(rng, self.img_size, attrs)
            targets = targets_of(shapes, attr, named)
            if (len(targets) > 0) != MULTI_QUERY_TYPES[qtype][1]:
                break
        else:
            raise RuntimeError(f'No scene for a {qtype!r} query; check num_shapes / img_size.')
        text = SENTENCES[attr].format(**{attr: named})
        return dict(
            sample_idx=idx,
            img_path=None,
            shapes=shapes,
            target=None,
            targets=targets,
            question=str(rng.choice(self.long_questions)).format(sent=text),
            answer=self._multi_answer(rng, len(targets), named),
            query_type=qtype,
            is_sentence=True,
            num_targets=len(targets),
            no_target=not targets,
        )

    def load_data_list(self) -> list[dict]:
        """Generate the scene descriptions (images are rendered on access)."""
        return [self._make_sample(i) for i in range(self.num_samples)]

    def get_data_info(self, idx: int) -> dict:
        """Scene description plus the rendered ``img``, ``all_masks`` (K, H, W) and
        ``gt_masks``: (1, H, W) for a single target and in merged mode, (N, H, W) per
        object (``targets`` then lists them left to right), (0, H, W) for a no-target
        training sample, (1, H, W) zeros for a no-target one in ``test_mode``."""
        info = super().get_data_info(idx)
        img, masks = render_scene(info['shapes'], self.img_size)
        info['img'], info['all_masks'] = img, masks
        if info['target'] is not None:
            info['gt_masks'] = masks[info['target']][None]
            return info
        targets = info['targets']
        if not targets:
            num = 1 if self._empty_target else 0
            info['gt_masks'] = np.zeros((num, self.img_size, self.img_size), np.uint8)
        elif self.target_mode == 'merged':
            info['gt_masks'] = masks[targets].max(0, keepdims=True)  # (1, H, W)
        else:
            order = order_left_to_right(masks[targets])
            info['targets'] = [targets[k] for k in order]
            info['gt_masks'] = masks[info['targets']]  # (N, H, W)
        return info
