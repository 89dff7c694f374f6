"""init_model / inference (precisions, IoU scores) and tools/infer.py on the tiny config."""

import copy
import os.path as osp
import re
import runpy
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from PIL import Image
from tool_runner import DEMO, REPO, output, run_tool

from lisakit.apis import PRECISIONS, inference, inference_model, init_model
from lisakit.datasets.shapes_reasonseg import render_scene
from lisakit.models.processors import BaseVLProcessor

SHAPES = [
    dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0),
    dict(kind='circle', color='blue', cx=44.0, cy=44.0, r=10.0, angle=0.0),
]


def test_teacher_forced_and_generated_inference(tiny_cfg, tmp_path):
    model = init_model(tiny_cfg)
    image, _ = render_scene(SHAPES, 64)
    forced = inference_model(model, image, 'the red shape', answer='<SEG> and <SEG>.')
    assert forced.pred_masks.shape == (2, 64, 64) and forced.pred_masks.dtype == torch.bool
    assert forced.pred_text == '<SEG> and <SEG>.'
    assert forced.pred_iou_scores.shape == (2,) and forced.pred_iou_scores.dtype == torch.float32
    path = tmp_path / 'img.png'
    Image.fromarray(image).save(path)
    generated = inference_model(model, str(path), 'Can you segment the red shape?')
    assert isinstance(generated.pred_text, str)
    assert generated.pred_masks.shape[1:] == (64, 64)
    assert len(generated.pred_masks) == generated.num_generated_seg  # no targets: all kept
    assert generated.pred_iou_scores.shape == (generated.num_generated_seg,)


def test_max_new_tokens_bounds_the_answer(tiny_cfg):
    model = init_model(tiny_cfg)
    image, _ = render_scene(SHAPES, 64)
    short = inference_model(model, image, 'the red shape', max_new_tokens=1)
    longer = inference_model(model, image, 'the red shape', max_new_tokens=6)
    assert len(short.pred_text.split()) <= 1
    assert longer.pred_text.startswith(short.pred_text)  # greedy: the same first token
    assert model.generation_cfg == tiny_cfg.model.generation_cfg  # the call did not change it
    with pytest.raises(ValueError, match='max_new_tokens=0'):
        inference_model(model, image, 'the red shape', max_new_tokens=0)


def test_inference_drops_the_mask_loader_of_a_jsonl_pipeline(tiny_cfg):
    """A config whose pipeline loads masks (JSONL, VQA) still predicts one mask per <SEG>."""
    cfg = copy.deepcopy(tiny_cfg)
    cfg.test_dataloader.dataset.pipeline.insert(1, dict(type='LoadMaskAnnotations'))
    model = init_model(cfg)
    image, _ = render_scene(SHAPES, 64)
    forced = inference_model(model, image, 'the red shape', answer='<SEG> and <SEG>.')
    assert forced.pred_masks.shape == (2, 64, 64)


def test_iou_scores_are_the_mask_decoders(tiny_cfg):
    model = init_model(tiny_cfg)
    image, _ = render_scene(SHAPES, 64)
    sample = inference(model, image, 'the red shape', answer='<SEG>.')
    steps = [t for t in model.cfg.test_dataloader.dataset.pipeline if 'Annotation' not in t['type']]
    results = dict(
        img=image, img_path=None, question='<image>\nthe red shape', answer='<SEG>.', sample_idx=0
    )
    inputs = model.data_preprocessor(pseudo_collate([Compose(steps)(results)]), False)['inputs']
    with torch.no_grad():
        lm = model.backbone(inputs['input_ids'], inputs['attention_mask'], inputs['vision'])
        prompt_encoder = model.head.prompt_encoder
        _, iou = model.head.mask_decoder(
            image_embeddings=model.sam_encoder(inputs['sam_images']),
            image_pe=prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=model.neck(lm['seg_embeds'][0])[:, None],  # (1, 1, C)
            dense_prompt_embeddings=prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                1, -1, 16, 16
            ),
            multimask_output=False,
        )  # (1, 1)
    torch.testing.assert_close(sample.pred_iou_scores, iou[:, 0])


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(precision='bf16'),
        dict(precision='fp16'),
        dict(load_in_4bit=True),
        dict(load_in_8bit=True),
    ],
    ids=['bf16', 'fp16', '4bit', '8bit'],
)
def test_precisions_give_the_fp32_masks(tiny_cfg, kwargs):
    image, _ = render_scene(SHAPES, 64)
    reference = inference(init_model(tiny_cfg), image, 'the red shape', answer='<SEG>.')
    model = init_model(tiny_cfg, **kwargs)
    dtype = model.backbone.hf_model.model.language_model.norm.weight.dtype
    if 'precision' in kwargs:
        assert dtype == getattr(torch, PRECISIONS[kwargs['precision']])
        assert model.neck.fc[0].weight.dtype == dtype
    else:
        assert model.backbone.num_quantized_layers > 0
    sample = inference(model, image, 'the red shape', answer='<SEG>.')
    agree = (sample.pred_masks == reference.pred_masks).float().mean()
    assert agree > 0.95, float(agree)
    torch.testing.assert_close(
        sample.pred_iou_scores, reference.pred_iou_scores, atol=0.02, rtol=0.1
    )
    assert tiny_cfg.model.backbone.get('quantization') is None  # the config was not changed


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize(
    'kwargs',
    [dict(), dict(precision='bf16'), dict(precision='fp16'), dict(load_in_4bit=True)],
    ids=['fp32', 'bf16', 'fp16', '4bit'],
)
def test_cuda_gives_the_cpu_fp32_masks(tiny_cfg, kwargs):
    import bitsandbytes as bnb

    image, _ = render_scene(SHAPES, 64)
    reference = inference(init_model(tiny_cfg), image, 'the red shape', answer='<SEG>.')
    model = init_model(tiny_cfg, device='cuda', **kwargs)
    for layer in model.modules():  # quantized weights survive the move to the GPU
        if isinstance(layer, bnb.nn.Linear4bit):
            assert layer.weight.dtype == torch.uint8 and layer.weight.device.type == 'cuda'
    sample = inference(model, image, 'the red shape', answer='<SEG>.')
    agree = (sample.pred_masks.cpu() == reference.pred_masks).float().mean()
    assert agree > 0.95, float(agree)


def test_bad_precision_options(tiny_cfg):
    with pytest.raises(ValueError, match="precision='fp8'"):
        init_model(tiny_cfg, precision='fp8')
    with pytest.raises(ValueError, match='not both'):
        init_model(tiny_cfg, load_in_4bit=True, load_in_8bit=True)


def test_bad_torch_dtype_names_the_key(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    cfg.model.backbone.torch_dtype = 'float99'
    with pytest.raises(ValueError, match=r"model.backbone.torch_dtype='float99'"):
        init_model(cfg)


def test_quantizing_a_fully_trained_language_model_is_refused(tiny_cfg, tmp_path):
    """The demo trains its tiny LLM in full: its weights cannot go into 4-bit layers."""
    ckpt = tmp_path / 'full.pth'
    torch.save({'state_dict': init_model(tiny_cfg).state_dict()}, ckpt)
    assert init_model(tiny_cfg, checkpoint=str(ckpt)) is not None  # fine unquantized
    with pytest.raises(ValueError, match=r'trained in full.*without quantization'):
        init_model(tiny_cfg, checkpoint=str(ckpt), load_in_4bit=True)


def test_infer_tool_writes_mask_and_overlay(tmp_path):
    image, _ = render_scene(SHAPES, 64)
    image = np.ascontiguousarray(image[:, :48])  # non-square input
    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    out = tmp_path / 'out'
    proc = run_tool(
        'infer.py', DEMO, '-', str(path), 'the red shape', '--answer', '<SEG>.', '--out', str(out)
    )
    assert proc.returncode == 0, output(proc)
    assert '1 mask(s) written' in proc.stdout
    assert re.search(r'predicted IoU \(SAM\): \[-?\d+\.\d{3}\]', proc.stdout), proc.stdout
    mask = np.asarray(Image.open(out / 'scene_mask_0.png'))
    overlay = np.asarray(Image.open(out / 'scene_overlay.png'))
    assert mask.shape == (64, 48) and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == (64, 48, 3)
    expected = np.where(
        mask[..., None] > 0, (0.5 * image + 0.5 * np.array([230, 30, 30])).round(), image
    )
    np.testing.assert_array_equal(overlay, expected.astype(np.uint8))


def test_infer_tool_generates_with_max_new_tokens(tmp_path, monkeypatch, capsys):
    image, _ = render_scene(SHAPES, 64)
    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    args = [DEMO, '-', str(path), 'the red shape', '--out', str(tmp_path / 'out')]
    monkeypatch.setattr(sys, 'argv', ['infer.py', *args, '--max-new-tokens', '2'])
    with pytest.raises(SystemExit) as exit_info:  # in-process: no interpreter start-up
        runpy.run_path(osp.join(REPO, 'tools', 'infer.py'), run_name='__main__')
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    if lines[-1] == 'no matching object':  # no <SEG>: a model without [REJ] found none
        answer = lines[-2]
        assert '<SEG>' not in answer
    else:
        answer = lines[next(i for i, x in enumerate(lines) if x.startswith('predicted IoU')) - 1]
        assert '<SEG>' in answer and 'mask(s) written' in lines[-1]
    assert len(answer.split()) <= 2


def test_infer_tool_says_no_matching_object_for_a_rej_answer(tmp_path, monkeypatch, capsys):
    """The [REJ] config's model, its generation biased to write [REJ]: the tool prints
    the answer and "no matching object", and writes no file."""
    image, _ = render_scene(SHAPES, 64)
    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    config = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes-multi-rej.py')
    processor = Config.fromfile(config).model.backbone.processor
    rej_id = BaseVLProcessor(processor.tokenizer, rej_token=processor.rej_token).rej_token_id
    bias = f'model.generation_cfg.sequence_bias=[[[{rej_id}],100.0]]'
    out = tmp_path / 'out'
    args = [config, '-', str(path), 'Segment all the red shapes.', '--out', str(out)]
    argv = ['infer.py', *args, '--max-new-tokens', '2', '--cfg-options', bias]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(osp.join(REPO, 'tools', 'infer.py'), run_name='__main__')
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ['[REJ] [REJ]', 'no matching object']
    assert not out.exists() or not any(out.iterdir())
