"""Export / merge a trained tiny Qwen2.5-VL LISA like the LLaVA one (apis/export.py); the
merged exports of the tiny Qwen3-VL (its own HF class and image processor settings) and of the
tiny LLaVA + SAM 2 LISA (the other mask head) too."""

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from tool_runner import REPO

from lisakit.apis import init_model
from lisakit.apis.export import export_merged, export_model
from lisakit.apis.inference import _build
from lisakit.registry import DATASETS

QWEN_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qwen_shapes.py')
QWEN3_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qwen3_shapes.py')
SAM2_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_sam2_shapes.py')
LORA = dict(
    trainable=dict(language_model='lora', embeddings='seg_rows'),
    lora=dict(_delete_=True, r=4, alpha=8, dropout=0.0),
)
NF4 = dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='float32')


def _batch(cfg, split, n=4):
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = DATASETS.build(dict(copy.deepcopy(loader.dataset.to_dict()), num_samples=n))
    return pseudo_collate([dataset[i] for i in range(n)])


def _trained(quantization, demo=QWEN_DEMO):
    """The tiny Qwen LISA with LoRA + <SEG> rows (4-bit or not), after 2 steps."""
    init_default_scope('lisakit')
    cfg = Config.fromfile(demo)
    backbone = dict(copy.deepcopy(LORA), quantization=quantization)
    cfg.merge_from_dict(dict(model=dict(backbone=backbone)))
    model = _build(cfg)
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]))
    for _ in range(2):
        model.train_step(_batch(cfg, 'train'), optim)
    return model.eval(), cfg


def _logits(model, cfg):
    data = model.data_preprocessor(_batch(cfg, 'val'), False)
    with torch.no_grad():
        return model(**data, mode='tensor')


@pytest.mark.parametrize(
    'merge, demo',
    [(False, QWEN_DEMO), (True, QWEN_DEMO), (True, QWEN3_DEMO), (True, SAM2_DEMO)],
    ids=['adapter', 'merged', 'merged-qwen3', 'merged-llava-sam2'],
)
def test_export_round_trip(merge, demo, tmp_path):
    model, cfg = _trained(None if merge else NF4, demo)
    expected = _logits(model, cfg)
    out = tmp_path / 'export'
    if merge:
        export_merged(model, cfg, str(out))
        hf_dir = out / getattr(model.backbone, 'hf_attr', 'llava')
        assert (hf_dir / 'config.json').is_file() and not (out / 'adapter').exists()
        assert demo == SAM2_DEMO or (hf_dir / 'preprocessor_config.json').is_file()
    else:
        export_model(model, cfg, str(out))
        assert (out / 'adapter' / 'adapter_model.safetensors').is_file()
    loaded = init_model(str(out))
    assert merge != any('lora_' in n for n, _ in loaded.named_parameters())
    for a, b in zip(expected, _logits(loaded, cfg)):
        if merge:  # LoRA folded into the weights: equal up to float rounding
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        else:
            assert torch.equal(a, b)
