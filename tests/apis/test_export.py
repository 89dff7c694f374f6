"""Export a trained tiny QLoRA checkpoint and load it back with identical predictions."""

import json

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from tool_runner import DEMO, QLORA, output, run_tool, train

from lisakit.apis import init_model
from lisakit.registry import DATASETS


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('export')
    proc = train(work_dir, 1, config=QLORA)
    assert proc.returncode == 0, output(proc)
    return work_dir, Config.fromfile(QLORA)


def _logits(model, cfg):
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, num_samples=4))
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), False)
    with torch.no_grad():
        return model(**data, mode='tensor')


def test_export_round_trip_gives_identical_predictions(trained, tmp_path):
    work_dir, cfg = trained
    ckpt = str(work_dir / 'epoch_1.pth')
    out = tmp_path / 'export'
    proc = run_tool('model_converters/export.py', QLORA, ckpt, str(out))
    assert proc.returncode == 0, output(proc)
    assert (out / 'adapter' / 'adapter_config.json').is_file()
    assert (out / 'adapter' / 'adapter_model.safetensors').is_file()
    assert (out / 'lisakit_weights.safetensors').is_file()
    info = json.loads((out / 'export_info.json').read_text())
    assert info['adapter_tensors'] > 0 and info['lisakit_tensors'] > 0
    card = (out / 'README.md').read_text()
    history = json.loads((work_dir / 'training_history.json').read_text())
    assert f'| val cIoU | {history["val"][0]["cIoU"]:.4f} |' in card  # epoch 1's val row
    assert 'lisa_tiny-qlora_shapes.py' in card and 'ShapesReasonSegDataset' in card
    assert f"init_model('{out}')" in card and ckpt in card
    from_ckpt = _logits(init_model(cfg, ckpt), cfg)
    from_export = _logits(init_model(str(out)), cfg)
    fresh = _logits(init_model(cfg), cfg)
    for a, b, c in zip(from_ckpt, from_export, fresh):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)  # the trained weights matter


def test_bf16_export_halves_the_files(trained, tmp_path):
    work_dir, cfg = trained
    ckpt = str(work_dir / 'epoch_1.pth')
    sizes = {}
    for dtype in ('float32', 'bfloat16'):
        out = tmp_path / dtype
        proc = run_tool('model_converters/export.py', QLORA, ckpt, str(out), '--dtype', dtype)
        assert proc.returncode == 0, output(proc)
        sizes[dtype] = (out / 'adapter' / 'adapter_model.safetensors').stat().st_size
    assert sizes['bfloat16'] < 0.6 * sizes['float32']
    from_ckpt = _logits(init_model(cfg, ckpt), cfg)
    from_bf16 = _logits(init_model(str(tmp_path / 'bfloat16')), cfg)
    for a, b in zip(from_ckpt, from_bf16):
        torch.testing.assert_close(a, b, atol=0.1, rtol=0.05)


def test_unsafe_load_flag_sets_the_opt_in(monkeypatch):
    import argparse

    from lisakit.engine.runtime import add_common_args, load_config
    from lisakit.utils.checkpoint import UNSAFE_LOAD_ENV

    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    load_config(parser.parse_args([QLORA, '--unsafe-load']))
    import os

    assert os.environ[UNSAFE_LOAD_ENV] == '1'


def test_merge_folds_lora_and_seg_rows_into_a_full_model(tmp_path):
    config = tmp_path / 'lora.py'
    config.write_text(
        f"_base_ = ['{DEMO}']\n"
        "model = dict(backbone=dict(trainable=dict(language_model='lora', embeddings='seg_rows'),\n"
        '             lora=dict(_delete_=True, r=4, alpha=8, dropout=0.0)))\n'
    )
    proc = train(tmp_path / 'wd', 1, config=str(config))
    assert proc.returncode == 0, output(proc)
    ckpt, out = str(tmp_path / 'wd' / 'epoch_1.pth'), tmp_path / 'merged'
    proc = run_tool('model_converters/export.py', str(config), ckpt, str(out), '--merge')
    assert proc.returncode == 0, output(proc)
    assert (out / 'llava' / 'config.json').is_file() and not (out / 'adapter').exists()
    cfg = Config.fromfile(str(config))
    merged = init_model(str(out))
    assert not any('lora_' in n for n, _ in merged.named_parameters())
    for a, b in zip(_logits(init_model(cfg, ckpt), cfg), _logits(merged, cfg)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
