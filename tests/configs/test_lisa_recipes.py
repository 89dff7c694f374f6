"""The two 7B recipes: LISA's training exactly (repro) and the QLoRA recipe.

Both configs load; their models, built with the tiny stand-ins for the 7B weights (no
download), train exactly LISA's parts (repro) or the documented QLoRA subset.
"""

import copy
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from lisakit.engine.runtime import deepspeed_config_keys
from lisakit.registry import DATASETS, MODELS
from lisakit.utils.constants import SEG_TOKEN

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LISA_CONFIGS = osp.join(REPO, 'configs', 'lisa')
REPRO = osp.join(
    LISA_CONFIGS, 'lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_8xb2-accum10-zero2_lisa-mix.py'
)
QLORA = osp.join(LISA_CONFIGS, 'lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py')


def _leaves(dataset: dict) -> list[dict]:
    """The source datasets of a (nested) MixedDataset config."""
    if dataset['type'] != 'MixedDataset':
        return [dataset]
    return [leaf for d in dataset['datasets'] for leaf in _leaves(d)]


def _tiny_model(cfg: Config, tiny_cfg: Config):
    """The recipe's model with the tiny LLaVA / SAM sizes instead of the 7B checkpoints."""
    model, tiny = copy.deepcopy(cfg.model.to_dict()), tiny_cfg.model.to_dict()
    processor = dict(
        model['backbone']['processor'], tokenizer=tiny['backbone']['processor']['tokenizer']
    )
    model['backbone'].update(
        pretrained=None,
        llava_config=tiny['backbone']['llava_config'],
        processor=processor,
        torch_dtype='float32',
    )
    if model['backbone'].get('quantization'):
        model['backbone']['quantization']['compute_dtype'] = 'float32'
    model.update(sam_encoder=tiny['sam_encoder'], head=tiny['head'], neck=tiny['neck'])
    return MODELS.build(model)


def _trainable(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


@pytest.fixture(scope='module')
def repro():
    return Config.fromfile(REPRO)


def test_repro_recipe_is_lisas_training(repro):
    backbone = repro.model.backbone
    assert backbone.lora == dict(r=8, alpha=16, dropout=0.05, target_modules=['q_proj', 'v_proj'])
    assert backbone.trainable == dict(language_model='lora', embeddings='all')
    assert backbone.get('quantization') is None and backbone.torch_dtype == 'bfloat16'
    assert (backbone.projector_type, backbone.use_im_start_end) == ('linear', True)
    assert backbone.gradient_checkpointing and backbone.seg_token == '[SEG]'
    mask_losses = repro.model.head.loss_decode
    assert [loss.type for loss in mask_losses] == ['MaskBCELoss', 'DiceLoss']
    losses = [repro.model.loss_ce.loss_weight] + [loss.loss_weight for loss in mask_losses]
    assert losses == [1.0, 2.0, 0.5]
    # LISA's text (the 224-px CLIP and its 256 features come from the LLaVA-v1 folder)
    assert backbone.processor == dict(template='llava_v1', max_length=512, layout='per_query')
    # data: 9:3:3:1, 3 queries per image, explanatory 0.1, fresh draws, neutral samples
    loader = repro.train_dataloader
    assert loader.sampler.type == 'FreshDrawSampler' and loader.batch_size == 2
    assert loader.dataset.sample_rates == [9, 3, 3, 1]
    assert loader.dataset.num_samples == 2 * 10 * 500 * 8
    leaves = _leaves(loader.dataset.to_dict())
    assert len(leaves) == 5 + 4 + 1 + 1
    assert all(d['num_classes_per_sample'] == 3 for d in leaves if d['type'] != 'VQADataset')
    assert [d['explanatory'] for d in leaves if d['type'] == 'ReasonSegDataset'] == [0.1]
    pipelines = [d['pipeline'] for d in leaves] + [repro.val_dataloader.dataset.pipeline]
    for pipeline in pipelines:
        assert [s['type'] for s in pipeline][-2:] == ['SAMPreprocess', 'PackLISAInputs']
    # optimisation and checkpoints: LISA's DeepSpeed config, best by gIoU, no early stop
    optim = repro.optim_wrapper.optimizer
    assert (optim.type, optim.lr, optim.betas, optim.weight_decay) == (
        'AdamW',
        3e-4,
        (0.9, 0.95),
        0,
    )
    assert deepspeed_config_keys(repro.optim_wrapper) == dict(
        gradient_clipping=1.0, gradient_accumulation_steps=10, bf16=dict(enabled=True)
    )
    zero = repro.strategy.zero_optimization
    assert (zero.stage, zero.reduce_bucket_size, zero.allgather_bucket_size) == (2, 5e8, 5e8)
    warmup, decay = repro.param_scheduler
    assert (warmup.end, decay.begin, decay.end, decay.end_factor) == (1000, 1000, 50000, 0.0)
    assert repro.train_cfg.val_interval == 5000 and repro.train_cfg.max_iters == 50000
    assert repro.default_hooks.checkpoint.save_best == 'gIoU'
    assert 'EarlyStoppingHook' not in [h['type'] for h in repro.custom_hooks]


def test_repro_model_trains_lisas_parts(repro, tiny_cfg):
    model = _tiny_model(repro, tiny_cfg)
    trainable = _trainable(model)
    lora = [n for n in trainable if 'lora_' in n]
    assert lora and all('language_model' in n for n in lora)
    assert {n.split('.lora_')[0].rsplit('.', 1)[1] for n in lora} == {'q_proj', 'v_proj'}
    rest = [n for n in trainable if 'lora_' not in n]
    backbone = [n for n in rest if n.startswith('backbone.')]
    assert sorted(n.rsplit('.', 2)[-2] for n in backbone) == ['embed_tokens', 'lm_head']
    hf = model.backbone.hf_model
    assert hf.get_input_embeddings().weight.requires_grad  # the whole matrices
    assert hf.get_output_embeddings().weight.requires_grad
    others = {n.split('.')[0] + '.' + n.split('.')[1] for n in rest if n not in backbone}
    assert others == {'neck.fc', 'head.mask_decoder'}
    assert all(p.requires_grad for p in model.head.mask_decoder.parameters())


def test_qlora_recipe_departs_as_documented(tiny_cfg):
    qlora = Config.fromfile(QLORA)
    backbone = qlora.model.backbone
    assert backbone.quantization.bits == 4
    assert backbone.trainable == dict(language_model='lora', embeddings='seg_rows')
    assert backbone.lora.target_modules == ['q_proj', 'k_proj', 'v_proj', 'o_proj']
    # one model path: the llava-hf folder gives the tokenizer and CLIP-336 (576 features)
    assert 'tokenizer' not in backbone and backbone.pretrained == 'data/llava-1.5-7b-hf'
    # LISA's 257 text tokens (the image counted as one): 832 tokens with 576 features
    assert backbone.processor == dict(template='llava_v1', max_text_length=257, layout='per_query')
    assert qlora.default_hooks.checkpoint.get('save_best', 'cIoU') == 'cIoU'
    loader = qlora.train_dataloader
    assert loader.sampler.type == 'FreshDrawSampler'
    (reason_seg,) = _leaves(loader.dataset.to_dict())
    assert (reason_seg['num_classes_per_sample'], reason_seg['explanatory']) == (3, 0.1)
    model = _tiny_model(qlora, tiny_cfg)
    assert model.backbone.num_quantized_layers > 0
    trainable = _trainable(model)
    lora = [n for n in trainable if 'lora_' in n]
    kinds = {n.split('.lora_')[0].rsplit('.', 1)[1] for n in lora}
    assert kinds == {'q_proj', 'k_proj', 'v_proj', 'o_proj'}
    backbone = [n for n in trainable if n.startswith('backbone.') and 'lora_' not in n]
    assert backbone and all('trainable_tokens' in n for n in backbone)  # the <SEG> rows only


def _mixing_helpers():
    """``localize`` and the ``lisa_data`` fixture of tests/datasets/test_mixing.py."""
    path = osp.join(REPO, 'tests', 'datasets', 'test_mixing.py')
    spec = importlib.util.spec_from_file_location('_lisa_mix_fixtures', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MIXING = _mixing_helpers()
lisa_data = _MIXING.lisa_data  # every source of LISA's mix, generated in its real format


def test_repro_data_builds_on_every_source(repro, lisa_data):
    """The repro recipe's LISA mix: every source must build and yield one mask per <SEG>
    (neutral samples: the <SEG> placeholders of the conversations)."""
    init_default_scope('lisakit')
    dataset = _MIXING.localize(copy.deepcopy(repro.train_dataloader.dataset.to_dict()), lisa_data)
    for leaf in _leaves(dataset):
        leaf['serialize_data'] = False  # skips mmengine's gc.collect (0.7 s per source)
    mix = DATASETS.build(dataset)
    assert [type(d).__name__ for d in mix.datasets] == [
        'MixedDataset',
        'MixedDataset',
        'VQADataset',
        'ReasonSegDataset',
    ]
    first_draw = {}
    for i in range(200):
        first_draw.setdefault(mix.source_of(i)[0], i)
    assert sorted(first_draw) == [0, 1, 2, 3]
    for k, i in first_draw.items():  # packed samples, one <SEG> per mask (none for VQA)
        out = mix[i]
        turns = out['data_samples'].metainfo['conversations']
        n_seg = sum(answer.count(SEG_TOKEN) for _, answer in turns)
        assert len(out['data_samples'].gt_masks) == n_seg
        assert (n_seg == 0) == (k == 2), (k, n_seg)
    val = _MIXING.localize(repro.val_dataloader.dataset.to_dict(), lisa_data)
    assert DATASETS.build(val).get_data_info(0)['answer'] == '<SEG>.'
