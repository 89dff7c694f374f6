"""The disk cache of frozen SAM image embeddings (SAMImageEncoder(cache=...))."""

import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from tool_runner import DEMO, REPO, SMALL

from lisakit.models.backbones.sam_cache import ENTRY_SUFFIX, image_key, module_fingerprint
from lisakit.registry import DATASETS, MODELS
from lisakit.utils.cli import run_cli

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
import precompute_sam_cache  # noqa: E402

NUM_IMAGES = 3


def _encoders(model_cfg, cache_dir):
    """(uncached, cached) tiny SAM encoders with the same random weights."""
    cfg = model_cfg['sam_encoder']
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    cached = MODELS.build(dict(cfg, cache=dict(dir=str(cache_dir))))
    cached.load_state_dict(plain.state_dict())
    return plain, cached


def _images(model_cfg):
    size = model_cfg['sam_encoder']['img_size']
    return torch.randn(NUM_IMAGES, 3, size, size, generator=torch.Generator().manual_seed(1))


def _entries(cache_dir):
    return sorted(cache_dir.rglob('*' + ENTRY_SUFFIX))


def test_cached_embeddings_bit_identical_and_second_call_hits(tiny_model_cfg, tmp_path):
    plain, cached = _encoders(tiny_model_cfg, tmp_path)
    images = _images(tiny_model_cfg)
    expected = plain(images)  # (B, C, h, w)
    first = cached(images)
    assert (cached.cache.hits, cached.cache.misses) == (0, NUM_IMAGES)
    assert len(_entries(tmp_path)) == NUM_IMAGES
    second = cached(images)
    assert (cached.cache.hits, cached.cache.misses) == (NUM_IMAGES, NUM_IMAGES)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert second.dtype == expected.dtype
    # a new encoder (another process, rank or run) reads the same entries
    _, other = _encoders(tiny_model_cfg, tmp_path)
    assert torch.equal(other(images[1:]), expected[1:])
    assert (other.cache.hits, other.cache.misses) == (NUM_IMAGES - 1, 0)
    assert not list(tmp_path.rglob('.tmp-*'))  # atomic writes leave no temporary file


def test_changed_pixel_misses_and_only_it_is_encoded(tiny_model_cfg, tmp_path):
    plain, cached = _encoders(tiny_model_cfg, tmp_path)
    images = _images(tiny_model_cfg)
    cached(images)
    changed = images.clone()
    changed[1, 0, 5, 7] += 0.5
    out = cached(changed)
    assert (cached.cache.hits, cached.cache.misses) == (NUM_IMAGES - 1, NUM_IMAGES + 1)
    assert torch.equal(out[1], plain(changed[1:2])[0])
    assert not torch.equal(out[1], plain(images[1:2])[0])
    assert len(_entries(tmp_path)) == NUM_IMAGES + 1


def test_key_covers_dtype_and_shape():
    image = torch.zeros(3, 4, 4)
    assert image_key(image) == image_key(image.clone())
    assert image_key(image) != image_key(image.double())
    assert image_key(image) != image_key(image.reshape(3, 2, 8))
    assert image_key(image) != image_key(image.to(torch.bfloat16))


def test_changed_encoder_weight_misses(tiny_model_cfg, tmp_path):
    plain, cached = _encoders(tiny_model_cfg, tmp_path)
    images = _images(tiny_model_cfg)
    cached(images)
    old = cached.fingerprint
    state = copy.deepcopy(plain.state_dict())
    state['encoder.neck.0.weight'][0, 0] += 1e-3
    cached.load_state_dict(state)  # resets the fingerprint
    out = cached(images)
    assert cached.fingerprint != old
    assert (cached.cache.hits, cached.cache.misses) == (0, 2 * NUM_IMAGES)
    plain.load_state_dict(state)
    assert torch.equal(out, plain(images))
    assert len(list(tmp_path.iterdir())) == 2  # one folder per encoder fingerprint


def test_encoder_dtype_and_autocast_are_part_of_the_key(tiny_model_cfg, tmp_path):
    plain, cached = _encoders(tiny_model_cfg, tmp_path)
    images = _images(tiny_model_cfg)
    exact = cached(images)
    cached.to(torch.float64)  # same values, another dtype: another fingerprint
    assert cached(images).dtype == torch.float64
    assert cached.cache.misses == 2 * NUM_IMAGES
    cached.to(torch.float32)
    for _ in range(2):  # cold, then warm
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out, expected = cached(images), plain(images)
        assert torch.equal(out, expected)
    assert (cached.cache.hits, cached.cache.misses) == (NUM_IMAGES, 3 * NUM_IMAGES)
    assert not torch.equal(out, exact)  # bf16 numerics: never served to an fp32 run


def test_unreadable_entry_is_recomputed(tiny_model_cfg, tmp_path):
    plain, cached = _encoders(tiny_model_cfg, tmp_path)
    images = _images(tiny_model_cfg)
    stored = cached(images)
    (entry,) = [p for p in _entries(tmp_path) if p.stem == image_key(images[0])]
    entry.write_bytes(b'not a safetensors file')
    out = cached(images)
    assert (cached.cache.hits, cached.cache.misses) == (NUM_IMAGES - 1, NUM_IMAGES + 1)
    # only the unreadable image is encoded again (alone: a batch of one); the others
    # are the stored bytes
    assert torch.equal(out[0], plain(images[:1])[0])
    assert torch.equal(out[1:], stored[1:])
    assert torch.equal(cached(images), out)  # rewritten, then read back
    assert cached.cache.hits == 2 * NUM_IMAGES - 1


def test_unwritable_cache_dir_warns_and_encodes(tiny_model_cfg, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    plain, cached = _encoders(tiny_model_cfg, blocker)
    images = _images(tiny_model_cfg)
    for _ in range(2):
        assert torch.equal(cached(images), plain(images))
    assert (cached.cache.hits, cached.cache.misses) == (0, 2 * NUM_IMAGES)


def test_cache_on_trainable_encoder_raises(tiny_model_cfg, tmp_path):
    cfg = dict(tiny_model_cfg['sam_encoder'], frozen=False, cache=dict(dir=str(tmp_path)))
    with pytest.raises(ValueError, match='frozen=False'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='cache.dir'):
        MODELS.build(dict(tiny_model_cfg['sam_encoder'], cache=dict(dir='')))


def test_lisa_loss_same_with_cache(tiny_model_cfg, small_dataset_cfg, tmp_path):
    torch.manual_seed(0)
    plain = MODELS.build(tiny_model_cfg)
    tiny_model_cfg['sam_encoder']['cache'] = dict(dir=str(tmp_path))
    cached = MODELS.build(tiny_model_cfg)
    cached.load_state_dict(plain.state_dict())
    dataset = DATASETS.build(small_dataset_cfg('val', 2))
    data = plain.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), False)
    with torch.no_grad():
        expected = plain(**data, mode='loss')
        for _ in range(2):  # cold, then warm
            got = cached(**data, mode='loss')
            assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert (cached.sam_encoder.cache.hits, cached.sam_encoder.cache.misses) == (2, 2)


def _cache_opts(tmp_path):
    return [f'model.sam_encoder.cache.dir={tmp_path / "cache"}', *SMALL]


def test_precompute_tool_fills_cache_then_forward_hits(tmp_path, monkeypatch, capsys):
    # the tool's entry point in this process (as its __main__ runs it; a subprocess would
    # spend most of the time importing torch and transformers again)
    work_dir = str(tmp_path / 'wd')
    args = [DEMO, '--work-dir', work_dir, '--cfg-options', *_cache_opts(tmp_path)]
    monkeypatch.setattr(sys, 'argv', ['precompute_sam_cache.py', *args])
    status = run_cli(precompute_sam_cache.main)
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    assert '(train): 0 hits, 16 misses' in stdout, stdout  # SMALL: 16 samples
    assert len(_entries(tmp_path / 'cache')) == 16
    # a new model built as tools/train.py builds it (new encoder, weights fingerprinted
    # again) finds every image on disk
    cfg = precompute_sam_cache.load_config(precompute_sam_cache.parse_args())
    runner = Runner.from_cfg(cfg)
    cache = precompute_sam_cache.precompute(runner, cfg.train_dataloader, dict(enabled=False))
    assert (cache.hits, cache.misses) == (16, 0)


def test_precompute_tool_needs_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['precompute_sam_cache.py', DEMO, '--work-dir', str(tmp_path)])
    with pytest.raises(ValueError, match='model.sam_encoder.cache is not set'):
        precompute_sam_cache.main()


def test_sharded_weight_cannot_be_fingerprinted():
    module = torch.nn.Linear(2, 2)
    module.weight.data = torch.empty(0)  # what FSDP leaves of a sharded parameter
    with pytest.raises(ValueError, match="'weight' is empty here"):
        module_fingerprint(module, {})
