"""tools/analysis_tools/memory_report.py: meta estimates agree with a real 4-bit build."""

import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import memory_report  # noqa: E402

from lisakit.registry import MODELS  # noqa: E402

QLORA = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_shapes.py')
RECIPE_7B = osp.join(REPO, 'configs', '_base_', 'models', 'lisa_llava-1.5-7b-qlora_sam-vit-h.py')


def _sizes(meta):
    cfg = Config.fromfile(QLORA)
    init_default_scope('lisakit')
    model_cfg, quantization = memory_report.model_config(cfg, None, meta)
    if meta:
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
    else:
        model = MODELS.build(model_cfg)
    return memory_report.component_sizes(model, quantization, meta)


def test_meta_estimate_matches_real_4bit_storage():
    real, estimate = _sizes(meta=False), _sizes(meta=True)
    for part in ('backbone', 'sam_encoder', 'neck', 'head'):
        assert real[part][1] == estimate[part][1], part  # same trainable parameters
        assert estimate[part][2] == pytest.approx(real[part][2], rel=0.02), part


def test_7b_recipe_report_on_meta():
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'analysis_tools', 'memory_report.py'),
        RECIPE_7B,
        '--random-llava',
        'llava-1.5-7b',
        '--meta',
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line}
    assert int(rows['backbone'][1].replace(',', '')) > 7_000_000_000
    assert int(rows['backbone'][2].replace(',', '')) == 8_396_800  # LoRA + 2 <SEG> rows
    assert float(rows['backbone'][3]) < 4500  # MiB: 4-bit LLM, bf16 CLIP / embeddings


def test_random_llava_with_sam2_gets_random_sam2_parts():
    """--random-llava on the LLaVA + SAM 2.1-L base replaces both SAM 2 parts' weights."""
    base = osp.join(
        REPO, 'configs', '_base_', 'models', 'lisa_llava-1.5-7b-qlora_sam2.1-hiera-l.py'
    )
    model_cfg, _ = memory_report.model_config(Config.fromfile(base), 'llava-1.5-7b', meta=True)
    for part in ('sam_encoder', 'head'):
        assert model_cfg[part]['pretrained'] is None
        assert model_cfg[part]['sam2_config'] == memory_report.SAM2_1_HIERA_L
        assert 'checkpoint' not in model_cfg[part]


RECIPE_REASONSEG = osp.join(
    REPO, 'configs', 'lisa', 'lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py'
)
TINY_MODEL = osp.join(REPO, 'configs', '_base_', 'models', 'lisa_tiny.py')


def test_random_llava_folder_trains_and_infers(tmp_path):
    """The GPU path on CPU: a random LLaVA folder loaded through `pretrained=` (4-bit while
    loading), generated ReasonSeg data filling the text, train steps + both predict modes."""
    config = tmp_path / 'recipe_tiny_sam.py'
    tiny = Config.fromfile(TINY_MODEL).model
    config.write_text(
        f'_base_ = [{RECIPE_REASONSEG!r}]\n'
        f'model = dict(sam_encoder=dict(_delete_=True, **{tiny.sam_encoder.to_dict()!r}),\n'
        f'             head=dict(_delete_=True, **{tiny.head.to_dict()!r}),\n'
        f'             neck=dict(out_channels={tiny.neck.out_channels}),\n'
        '             backbone=dict(processor=dict(max_text_length=96)),\n'
        '             generation_cfg=dict(max_new_tokens=32))  # a random LLM never stops\n'
        'pipeline = [\n'
        "    dict(type='LoadImageFromFile'), dict(type='LoadReasonSegAnnotation'),\n"
        "    dict(type='SAMPreprocess', img_size=64), dict(type='PackLISAInputs'),\n"
        ']\n'
        'train_dataloader = dict(dataset=dict(pipeline=pipeline))\n'
    )
    out = tmp_path / 'numbers.json'
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'analysis_tools', 'memory_report.py'),
        str(config),
        '--random-llava',
        'llava-tiny',
        '--random-dir',
        str(tmp_path / 'llava'),
        '--steps',
        '1',
        '--infer',
        '1',
        '--out',
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'llava' / 'config.json')
    numbers = json.loads(out.read_text())
    assert numbers['train']['text_tokens'] == 96  # the generated query fills the text
    assert numbers['train']['step_s'] > 0 and numbers['train']['peak_gib'] > 0
    assert numbers['inference']['generate_s'] > 0
    assert numbers['inference']['max_new_tokens'] == 32
    assert 'backbone' in proc.stdout and 'lean checkpoint' in proc.stdout
