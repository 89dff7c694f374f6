"""Unit tests of lisakit.datasets.ShapesReasonSegDataset."""

import json
import os
from collections import Counter

import numpy as np
import pytest

from lisakit.datasets import ShapesReasonSegDataset
from lisakit.datasets.shapes_reasonseg import COLORS, SHAPE_CORNERS

N = 40


def items(ds):
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope='module')
def default_items():
    return items(ShapesReasonSegDataset(num_samples=N, seed=0))


def test_deterministic_under_seed(default_items):
    again = items(ShapesReasonSegDataset(num_samples=N, seed=0))
    assert len(again) == len(default_items) == N
    for a, b in zip(default_items, again, strict=True):
        assert a['question'] == b['question']
        assert a['answer'] == b['answer']
        assert a['query_type'] == b['query_type']
        assert a['target'] == b['target']
        assert np.array_equal(a['img'], b['img'])
        assert np.array_equal(a['gt_masks'], b['gt_masks'])


def test_other_seed_differs(default_items):
    other = items(ShapesReasonSegDataset(num_samples=N, seed=1))
    same = sum(
        np.array_equal(a['img'], b['img']) for a, b in zip(default_items, other, strict=True)
    )
    assert same == 0


def test_train_and_val_differ(default_items):
    val = items(ShapesReasonSegDataset(num_samples=N, seed=0, split='val'))
    test = items(ShapesReasonSegDataset(num_samples=N, seed=0, split='test'))
    assert (
        sum(np.array_equal(a['img'], b['img']) for a, b in zip(default_items, val, strict=True))
        == 0
    )
    assert sum(np.array_equal(a['img'], b['img']) for a, b in zip(val, test, strict=True)) == 0


def test_sample_fields_and_types(default_items):
    for x in default_items[:10]:
        assert x['img'].shape == (64, 64, 3) and x['img'].dtype == np.uint8
        assert x['gt_masks'].shape == (1, 64, 64) and x['gt_masks'].dtype == np.uint8
        assert set(np.unique(x['gt_masks'])) <= {0, 1}
        assert x['img_path'] is None
        assert x['question'].startswith('<image>\n')
        assert x['answer'].count('<SEG>') == 1
        assert 2 <= len(x['shapes']) <= 4
        assert isinstance(x['is_sentence'], bool)
    assert [x['sample_idx'] for x in default_items] == list(range(N))


def test_img_size_parameter():
    x = ShapesReasonSegDataset(num_samples=2, img_size=32)[1]
    assert x['img'].shape == (32, 32, 3)
    assert x['gt_masks'].shape == (1, 32, 32)


def test_gt_mask_is_exactly_one_shape(default_items):
    for x in default_items:
        gt = x['gt_masks'][0]
        assert gt.sum() > 0
        all_masks = x['all_masks']
        assert len(all_masks) == len(x['shapes'])
        equal = [k for k in range(len(all_masks)) if np.array_equal(all_masks[k], gt)]
        assert equal == [x['target']]
        # Shapes never overlap, so the target is unambiguous pixel-wise.
        assert all_masks.sum(0).max() == 1


def test_shape_pixels_have_their_colour(default_items):
    for x in default_items[:10]:
        for shape, mask in zip(x['shapes'], x['all_masks'], strict=True):
            pixels = x['img'][mask.astype(bool)]
            assert (pixels == np.array(COLORS[shape['color']])).all()


def test_all_query_types_occur_with_default_weights():
    ds = ShapesReasonSegDataset(num_samples=300, seed=0)
    types = Counter(ds.get_data_info(i)['query_type'] for i in range(len(ds)))
    assert set(types) == {'color', 'shape', 'position', 'size', 'corners', 'relation'}
    assert sum(types.values()) == 300


def test_default_query_mix_follows_weights():
    # query_weights are documented as the relative frequency of each query type: with the
    # uniform default, each of the 6 types should get roughly 1/6 of 600 samples (100).
    ds = ShapesReasonSegDataset(num_samples=600, seed=0)
    types = Counter(ds.get_data_info(i)['query_type'] for i in range(len(ds)))
    assert min(types.values()) >= 50, types


def test_color_only_queries_name_the_target_colour():
    ds = ShapesReasonSegDataset(num_samples=30, seed=0, query_weights=dict(color=1.0))
    for i in range(len(ds)):
        x = ds[i]
        assert x['query_type'] == 'color'
        assert x['is_sentence'] is False
        named = [c for c in COLORS if f'{c} shape' in x['question']]
        assert len(named) == 1, x['question']
        color = named[0]
        # Pixels inside the target mask have exactly the named colour ...
        pixels = x['img'][x['gt_masks'][0].astype(bool)]
        assert (pixels == np.array(COLORS[color])).all()
        # ... and no other shape has it, so the text picks the target.
        for k, mask in enumerate(x['all_masks']):
            if k != x['target']:
                other = x['img'][mask.astype(bool)]
                assert not (other == np.array(COLORS[color])).all(-1).any()


def test_shape_queries_name_the_target_kind():
    ds = ShapesReasonSegDataset(num_samples=20, seed=0, query_weights=dict(shape=1.0))
    for i in range(len(ds)):
        x = ds[i]
        named = [k for k in SHAPE_CORNERS if f' {k} ' in x['question']]
        assert named == [x['shapes'][x['target']]['kind']]
        assert sum(s['kind'] == named[0] for s in x['shapes']) == 1


def test_position_queries_pick_the_extreme_shape():
    ds = ShapesReasonSegDataset(num_samples=20, seed=0, query_weights=dict(position=1.0))
    for i in range(len(ds)):
        x = ds[i]
        assert x['is_sentence'] is True
        ys, xs = zip(*[np.nonzero(m) for m in x['all_masks']], strict=True)
        centre = {
            'left': [c.mean() for c in xs],
            'right': [-c.mean() for c in xs],
            'top': [c.mean() for c in ys],
            'bottom': [-c.mean() for c in ys],
        }
        side = [s for s in centre if f'closest to the {s}' in x['question']]
        assert len(side) == 1, x['question']
        assert int(np.argmin(centre[side[0]])) == x['target']


def test_query_weights_select_types():
    ds = ShapesReasonSegDataset(num_samples=20, seed=0, query_weights=dict(size=1.0, corners=1.0))
    types = {ds.get_data_info(i)['query_type'] for i in range(len(ds))}
    assert types == {'size', 'corners'}


def test_indices_limits_length():
    full = ShapesReasonSegDataset(num_samples=30, seed=0)
    five = ShapesReasonSegDataset(num_samples=30, seed=0, indices=5)
    assert len(five) == 5
    for i in range(5):
        assert five[i]['question'] == full[i]['question']
        assert np.array_equal(five[i]['img'], full[i]['img'])


def test_answers_and_questions_are_configurable():
    ds = ShapesReasonSegDataset(
        num_samples=5,
        answers=['<SEG>.'],
        short_questions=['<image>\nFind the {class_name}.'],
        long_questions=['<image>\n{sent}'],
    )
    for i in range(5):
        x = ds[i]
        assert x['answer'] == '<SEG>.'
        if not x['is_sentence']:
            assert x['question'].startswith('<image>\nFind the ')


def test_invalid_split_raises():
    with pytest.raises(ValueError, match=r"split='valid'.*'train'"):
        ShapesReasonSegDataset(num_samples=2, split='valid')


def test_unknown_query_type_raises():
    with pytest.raises(ValueError, match=r"unknown types \['colour'\].*'color'"):
        ShapesReasonSegDataset(num_samples=2, query_weights=dict(colour=1.0))


def test_answer_without_seg_raises():
    with pytest.raises(ValueError, match='<SEG>'):
        ShapesReasonSegDataset(num_samples=2, answers=['It is <SEG>.', 'It is here.'])


@pytest.mark.parametrize('num_shapes', [(1, 3), (3, 2), (2, 6)])
def test_invalid_num_shapes_raises(num_shapes):
    with pytest.raises(ValueError, match='num_shapes'):
        ShapesReasonSegDataset(num_samples=2, num_shapes=num_shapes)


MULTI = dict(all_color=1.0, every_kind=1.0, absent_color=1.0, absent_kind=1.0)


def _named(x):
    """(attribute, value) the multi / no-target question names."""
    for c in COLORS:
        if f'all the {c} shapes' in x['question']:
            return 'color', c
    for k in SHAPE_CORNERS:
        if f'every {k}.' in x['question']:
            return 'kind', k
    raise AssertionError(x['question'])


def test_multi_target_queries_name_every_matching_shape():
    ds = ShapesReasonSegDataset(num_samples=40, seed=0, query_weights=MULTI)
    kinds = Counter()
    for i in range(len(ds)):
        x = ds[i]
        kinds[x['query_type']] += 1
        attr, value = _named(x)
        matching = [k for k, s in enumerate(x['shapes']) if s[attr] == value]
        assert sorted(x['targets']) == matching and x['num_targets'] == len(matching)
        if x['query_type'].startswith('absent'):
            assert matching == [] and x['no_target'] is True
            assert x['gt_masks'].shape == (0, 64, 64) and '<SEG>' not in x['answer']
        else:
            assert matching and x['no_target'] is False
            union = x['all_masks'][matching].max(0)
            assert np.array_equal(x['gt_masks'], union[None]) and x['answer'].count('<SEG>') == 1
    assert set(kinds) == set(MULTI)
    assert any(ds[i]['num_targets'] >= 2 for i in range(len(ds)))


def test_per_object_mode_orders_targets_left_to_right():
    ds = ShapesReasonSegDataset(
        num_samples=30, seed=0, query_weights=dict(all_color=1.0), target_mode='per_object'
    )
    multi = 0
    for i in range(len(ds)):
        x = ds[i]
        n = x['num_targets']
        assert x['gt_masks'].shape == (n, 64, 64) and x['answer'].count('<SEG>') == n
        lefts = [int(np.nonzero(m)[1].min()) for m in x['gt_masks']]
        assert lefts == sorted(lefts)
        multi += n >= 2
    assert multi >= 5


def test_no_target_in_test_mode_keeps_one_zero_mask():
    ds = ShapesReasonSegDataset(
        num_samples=5, split='val', query_weights=dict(absent_color=1.0), answers=['<SEG>.'],
        test_mode=True,
    )  # fmt: skip
    for i in range(len(ds)):
        x = ds[i]
        assert x['answer'] == '<SEG>.' and x['gt_masks'].shape == (1, 64, 64)
        assert not x['gt_masks'].any() and x['no_target'] is True


def test_lisa_form_keeps_a_seg_and_a_zero_mask_in_training():
    ds = ShapesReasonSegDataset(
        num_samples=3, query_weights=dict(absent_kind=1.0), answers=['<SEG>.'], reject_answers=None
    )
    for i in range(len(ds)):
        x = ds[i]
        assert x['answer'] == '<SEG>.' and x['gt_masks'].shape == (1, 64, 64)
        assert not x['gt_masks'].any() and x['no_target'] is True


def test_multi_config_tokenizer_knows_every_word():
    from mmengine.config import Config

    from lisakit.datasets.shapes_reasonseg import multi_target_corpus
    from lisakit.tokenizers.word_tokenizer import _WORD_RE, corpus_vocab, default_corpus

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = Config.fromfile(os.path.join(repo, 'configs/lisa/lisa_tiny_shapes-multi.py'))
    vocab = corpus_vocab(default_corpus() + list(cfg.extra_words))
    words = {w for t in multi_target_corpus() for w in _WORD_RE.findall(t.lower())}
    assert words <= set(vocab), words - set(vocab)


def test_rej_answers_restate_the_named_value():
    """GSVA's "[REJ]." for no-target training queries; "{named}" becomes the colour or
    kind the question names (the [REJ] demo's "red [REJ]." / "red <SEG>.")."""
    ds = ShapesReasonSegDataset(
        num_samples=12,
        query_weights=MULTI,
        answers=['{named} <SEG>.'],
        reject_answers=['{named} [REJ].'],
    )
    kinds = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        named = info['answer'].split()[0]
        assert named in (COLORS if 'all the' in info['question'] else SHAPE_CORNERS)
        assert named in info['question']
        if info['no_target']:
            assert info['answer'] == f'{named} [REJ].' and info['gt_masks'].shape[0] == 0
        else:
            assert info['answer'] == f'{named} <SEG>.'
        kinds.add(info['no_target'])
    assert kinds == {True, False}


def test_bad_multi_settings():
    with pytest.raises(ValueError, match='target_mode'):
        ShapesReasonSegDataset(num_samples=1, target_mode='stacked')
    with pytest.raises(ValueError, match='reject_answers'):
        ShapesReasonSegDataset(num_samples=1, reject_answers=['<SEG>'])
    with pytest.raises(ValueError, match='max_targets'):
        ShapesReasonSegDataset(num_samples=1, query_weights=MULTI, max_targets=0)


@pytest.mark.slow
def test_multi_config_smoke_run(tmp_path):
    """One short epoch of the multi / no-target demo: rejection answers train as text-only
    samples and generate-mode validation reports N-acc / T-acc."""
    from tool_runner import REPO, output, train

    config = os.path.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes-multi.py')
    short = ['--cfg-options', 'model.generation_cfg.max_new_tokens=3']  # '<SEG>' '.' eos
    proc = train(tmp_path, 1, *short, config=config)
    assert proc.returncode == 0, output(proc)
    metrics = json.loads((tmp_path / 'metrics_epoch_1.json').read_text())['val']
    for key in ('gIoU', 'cIoU', 'N-acc', 'T-acc', 'absent_color/N-acc', 'all_color/T-acc'):
        assert 0.0 <= metrics[key] <= 1.0, key
