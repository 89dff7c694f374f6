"""tools/model_converters/lisa_to_lisakit.py on a tiny checkpoint in LISA's official layout.

The synthetic checkpoint is written from the modules LISA itself is made of (HF LLaMA,
``mm_projector`` Linear, CLIP tower, segment_anything's SAM, ``text_hidden_fcs``), with
LISA's key names, config.json fields and tokenizer additions, in three file layouts. The
converted lisakit model must map every key and give the mask logits of LISA's own forward
computed directly on those modules (``_lisa_reference``).
"""

import json
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from PIL import Image
from safetensors.torch import save_file
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from tokenizers import AddedToken
from tool_runner import DEMO, REPO, output, run_tool
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from lisakit.apis import inference, init_model
from lisakit.datasets.shapes_reasonseg import render_scene
from lisakit.models.converters import convert_lisa_checkpoint, map_keys
from lisakit.tokenizers import WordTokenizer

D, CLIP_D, PROMPT_D, SAM_SIZE = 128, 64, 64, 64
EVAL_CONFIG = f'{REPO}/configs/lisa/lisa_llava-v1-7b_sam-vit-h_eval_reasonseg.py'
INV_FREQ = 'model.layers.0.self_attn.rotary_emb.inv_freq'
SHAPES = [
    dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0),
    dict(kind='circle', color='blue', cx=44.0, cy=40.0, r=9.0, angle=0.0),
]


def _jitter(module: nn.Module, scale: float = 0.05) -> nn.Module:
    """Perturb every parameter so that zero / one inits (SAM's pos_embed, norms) matter."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module.eval()


def llava_v1_tokenizer():
    """LLaVA-v1's additions (LLaVA-Lightning-7B-v1-1, LISA's base): <im_patch>, <im_start>,
    <im_end>."""
    tok = WordTokenizer()
    tok.add_tokens([AddedToken('<im_patch>', normalized=False)])
    tok.add_special_tokens(
        {
            'additional_special_tokens': [
                AddedToken(t, normalized=False) for t in ('<im_start>', '<im_end>')
            ]
        }
    )
    return tok


def _lisa_tokenizer():
    """LISA-7B-v1's additions: LLaVA-v1's, then '[SEG]' (normal)."""
    tok = llava_v1_tokenizer()
    tok.add_tokens([AddedToken('[SEG]', normalized=False, special=False)])
    return tok


def _sam() -> Sam:
    encoder = ImageEncoderViT(
        depth=2,
        embed_dim=64,
        img_size=SAM_SIZE,
        mlp_ratio=4.0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=2,
        patch_size=4,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=(1,),
        window_size=8,
        out_chans=PROMPT_D,
    )
    prompt = PromptEncoder(
        embed_dim=PROMPT_D,
        image_embedding_size=(16, 16),
        input_image_size=(SAM_SIZE, SAM_SIZE),
        mask_in_chans=4,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_D, mlp_dim=256, num_heads=2),
        transformer_dim=PROMPT_D,
        iou_head_depth=3,
        iou_head_hidden_dim=64,
    )
    return Sam(encoder, prompt, decoder)


@pytest.fixture(scope='module')
def lisa(tmp_path_factory):
    """The modules of a tiny LISA and its official state dict, config.json and tokenizer."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('lisa')
    tok = _lisa_tokenizer()
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=D,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=CLIP_D,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    m = SimpleNamespace(
        tok=tok,
        llama=_jitter(LlamaForCausalLM(text), 0.0),
        clip=_jitter(CLIPVisionModel(vision)),
        projector=_jitter(nn.Linear(CLIP_D, D)),
        sam=_jitter(_sam()),
        fcs=_jitter(
            nn.ModuleList(
                [nn.Sequential(nn.Linear(D, D), nn.ReLU(), nn.Linear(D, PROMPT_D), nn.Dropout(0.0))]
            )
        ),
    )
    state = dict(m.llama.state_dict())  # model.embed_tokens / layers / norm, lm_head
    state[INV_FREQ] = torch.rand(16)  # saved by older transformers; dropped with a reason
    state.update({f'model.mm_projector.{k}': v for k, v in m.projector.state_dict().items()})
    state.update({f'model.visual_model.{k}': v for k, v in m.sam.state_dict().items()})
    state.update({f'model.text_hidden_fcs.{k}': v for k, v in m.fcs.state_dict().items()})
    m.state = {k: v.contiguous() for k, v in state.items()}
    m.config = dict(
        text.to_dict(),
        architectures=['LISAForCausalLM'],
        model_type='llava',
        mm_hidden_size=CLIP_D,
        mm_vision_select_layer=-2,
        mm_use_im_start_end=True,
        vision_tower='openai/clip-vit-large-patch14',
        out_dim=PROMPT_D,
        train_mask_decoder=True,
        use_cache=False,
    )
    m.clip_dir = root / 'clip'
    m.clip.save_pretrained(m.clip_dir)
    m.root = root
    return m


def _write(lisa, folder, layout: str, state=None) -> str:
    """An official-layout folder: config.json, tokenizer files and the weights."""
    state = lisa.state if state is None else state
    folder.mkdir()
    (folder / 'config.json').write_text(json.dumps(lisa.config))
    lisa.tok.save_pretrained(folder)
    keys = sorted(state)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    if layout == 'safetensors':
        save_file(state, folder / 'model.safetensors')
        return str(folder)
    ext, index = (
        ('safetensors', 'model') if layout == 'safetensors-index' else ('bin', 'pytorch_model')
    )
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f'{index}-0000{i}-of-00002.{ext}'
        tensors = {k: state[k] for k in part}
        save_file(tensors, folder / name) if ext == 'safetensors' else torch.save(
            tensors, folder / name
        )
        weight_map.update({k: name for k in part})
    (folder / f'{index}.{ext}.index.json').write_text(json.dumps(dict(weight_map=weight_map)))
    return str(folder)


def _inputs(model):
    """One packed sample from the converted model's own test pipeline."""
    image, _ = render_scene(SHAPES, SAM_SIZE)
    image = image[:, :48].copy()  # non-square: exercises SAM's crop and resize
    steps = [t for t in model.cfg.test_dataloader.dataset.pipeline if 'Annotation' not in t['type']]
    results = dict(
        img=image,
        img_path=None,
        question='<image>\nthe red shape',
        answer='<SEG> and <SEG>.',
        sample_idx=0,
    )
    return model.data_preprocessor(pseudo_collate([Compose(steps)(results)]), False)


@torch.no_grad()
def _lisa_reference(lisa, data, image_id: int) -> torch.Tensor:
    """LISA's forward (llava_arch splicing, LISA.py seg selection) on the source modules;
    ``image_id`` marks the placeholder that LISA writes as -200."""
    tok, inputs = lisa.tok, data['inputs']
    ids = inputs['input_ids'][0]
    pos = int((ids == image_id).nonzero())
    start, end = tok.convert_tokens_to_ids(['<im_start>', '<im_end>'])
    pixels = inputs['vision']['pixel_values']  # (1, 3, s, s)
    clip = lisa.clip(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    feats = lisa.projector(clip)[0]  # (N, D)
    embed = lisa.llama.model.embed_tokens
    embeds = torch.cat(
        [
            embed(ids[:pos]),
            embed(torch.tensor([start])),
            feats,
            embed(torch.tensor([end])),
            embed(ids[pos + 1 :]),
        ]
    )
    spliced = ids[:pos].tolist() + [start] + [-200] * len(feats) + [end] + ids[pos + 1 :].tolist()
    hidden = lisa.llama.model(inputs_embeds=embeds[None]).last_hidden_state[0]  # (L', D)
    seg = [i - 1 for i, t in enumerate(spliced) if t == tok.convert_tokens_to_ids('[SEG]')]
    prompts = lisa.fcs[0](hidden)[seg]  # (n, C): the states just before each [SEG]
    sam, n = lisa.sam, len(seg)
    dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(n, -1, 16, 16)
    low, _ = sam.mask_decoder(
        image_embeddings=sam.image_encoder(inputs['sam_images']),
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=prompts[:, None],
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    meta = data['data_samples'][0].metainfo
    return sam.postprocess_masks(low, tuple(meta['sam_resize']), tuple(meta['ori_shape']))[:, 0]


@pytest.mark.parametrize('layout', ['safetensors', 'safetensors-index', 'bin-index'])
def test_conversion_maps_every_key_and_matches_lisa(lisa, tmp_path, layout):
    src = _write(lisa, tmp_path / 'src', layout)
    out = tmp_path / 'out'
    report = convert_lisa_checkpoint(src, str(out), DEMO, vision_tower=str(lisa.clip_dir))
    assert report.num_source_keys == len(lisa.state)
    assert report.num_mapped == len(lisa.state) - 1
    assert list(report.dropped) == [INV_FREQ]
    assert report.seg_token_id == lisa.tok.convert_tokens_to_ids('[SEG]')
    assert report.added_tokens == ['<image>'] and report.vocab_size == len(lisa.tok) + 1
    model = init_model(str(out))
    assert model.backbone.seg_token_id == report.seg_token_id
    torch.testing.assert_close(model.neck.fc[2].weight, lisa.fcs[0][2].weight)
    data = _inputs(model)
    with torch.no_grad():
        masks = model(**data, mode='tensor')[0]
    reference = _lisa_reference(lisa, data, model.backbone.image_token_id)
    assert masks.shape == reference.shape == (2, 64, 48)
    torch.testing.assert_close(masks, reference, atol=1e-4, rtol=1e-4)
    assert (reference > 0).any() and (reference <= 0).any()  # a real mask, not a constant
    if layout == 'safetensors':
        _check_forced_generation(model)
    if layout == 'bin-index':  # 4-bit loading of the converted folder (LISA's --load_in_4bit)
        quantized = init_model(str(out), load_in_4bit=True)
        assert quantized.backbone.num_quantized_layers == 14  # 2 layers x 7 LLaMA linears
        projector = quantized.backbone.hf_model.model.multi_modal_projector.linear
        assert type(projector) is nn.Linear  # CLIP, projector and LM head stay unquantized
        with torch.no_grad():
            masks_4bit = quantized(**_inputs(quantized), mode='tensor')[0]
        assert ((masks_4bit > 0) == (masks > 0)).float().mean() > 0.9


def _check_forced_generation(model):
    """Generate mode on the v1 layout (<im_start>/<im_end> in the prompt): constrained to
    write '[SEG] and [SEG].', it must give the teacher-forced masks and IoU scores."""
    tok = model.backbone.tokenizer
    answer = tok('[SEG] and [SEG].', add_special_tokens=False)['input_ids'] + [tok.eos_token_id]
    prompt_len = []

    def force(batch_id, ids):
        prompt_len[:] = prompt_len or [len(ids)]
        return [answer[min(len(ids) - prompt_len[0], len(answer) - 1)]]

    image, _ = render_scene(SHAPES, SAM_SIZE)
    forced = inference(model, image, 'the red shape', answer='<SEG> and <SEG>.')
    model.generation_cfg = dict(max_new_tokens=8, prefix_allowed_tokens_fn=force)
    generated = inference(model, image, 'the red shape')
    assert generated.pred_text.replace(' ', '') == '[SEG]and[SEG].'
    assert generated.num_generated_seg == 2
    assert torch.equal(generated.pred_masks, forced.pred_masks)
    torch.testing.assert_close(generated.pred_iou_scores, forced.pred_iou_scores)


def _tiny_eval_config(folder, data_root) -> str:
    """configs/lisa/*_eval_reasonseg.py with the tiny model's sizes, on a ReasonSeg folder."""
    cfg = Config.fromfile(EVAL_CONFIG)
    tiny = Config.fromfile(DEMO).model
    cfg.model.update(sam_encoder=tiny.sam_encoder, head=tiny.head, neck=tiny.neck)
    cfg.model.backbone.torch_dtype = cfg.model.sam_encoder.torch_dtype = 'float32'
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = str(data_root)
        loader.dataset.pipeline[2].img_size = SAM_SIZE  # SAMPreprocess
    path = folder / 'tiny_eval.py'
    Config(cfg.to_dict(), format_python_code=False).dump(str(path))
    return str(path)


def _reasonseg_folder(root):
    """Two ReasonSeg val images (one short, one long query) with a square target."""
    for name, (text, sentence) in dict(a=('red shape', False), b=('What is red?', True)).items():
        image, _ = render_scene(SHAPES[:1], SAM_SIZE)
        Image.fromarray(image).save(root / f'{name}.jpg')
        shape = dict(label='target', points=[[10, 10], [30, 10], [30, 30], [10, 30]])
        ann = dict(text=[text], is_sentence=sentence, shapes=[shape])
        (root / f'{name}.json').write_text(json.dumps(ann))


def test_tool_converts_and_tools_test_evaluates(lisa, tmp_path):
    # A checkpoint that still holds the tower, as transformers 4 named it (LISA's layout).
    tower = 'model.vision_tower.vision_tower.vision_model.'
    state = dict(lisa.state)
    state.update({tower + k: v for k, v in lisa.clip.state_dict().items()})
    state[tower + 'embeddings.position_ids'] = torch.arange(17)[None]
    src = _write(lisa, tmp_path / 'src', 'safetensors', state)
    (tmp_path / 'ReasonSeg' / 'val').mkdir(parents=True)
    _reasonseg_folder(tmp_path / 'ReasonSeg' / 'val')
    config = _tiny_eval_config(tmp_path, tmp_path / 'ReasonSeg')
    out = tmp_path / 'out'
    tool = 'model_converters/lisa_to_lisakit.py'
    proc = run_tool(tool, src, str(out), '--vision-tower', str(lisa.clip_dir), '--config', config)
    assert proc.returncode == 0, output(proc)
    assert f'{len(state)} source tensors: {len(state) - 2} mapped, 2 dropped' in proc.stdout
    assert f'dropped {tower}embeddings.position_ids: CLIP position ids' in proc.stdout
    assert f'dropped {INV_FREQ}: RoPE' in proc.stdout
    info = json.loads((out / 'export_info.json').read_text())['converted']
    assert info['vision_tower'].startswith('checkpoint')
    ckpt = torch.load(out / 'lisakit_checkpoint.pth', weights_only=True)
    assert ckpt['meta']['lisakit']['lean']
    assert {k.split('.')[0] for k in ckpt['state_dict']} == {'neck', 'head'}
    model = init_model(str(out / 'lisakit_config.py'), str(out / 'lisakit_checkpoint.pth'))
    data = _inputs(model)
    with torch.no_grad():
        masks = model(**data, mode='tensor')[0]
    reference = _lisa_reference(lisa, data, model.backbone.image_token_id)
    torch.testing.assert_close(masks, reference, atol=1e-4, rtol=1e-4)
    # tools/test.py on the converted folder: LISA's val prompts, '[SEG].' teacher-forced.
    metrics = tmp_path / 'metrics.json'
    proc = run_tool(
        'test.py',
        str(out / 'lisakit_config.py'),
        str(out / 'lisakit_checkpoint.pth'),
        '--work-dir',
        str(tmp_path / 'wd'),
        '--out',
        str(metrics),
    )
    assert proc.returncode == 0, output(proc)
    assert 'missing keys' not in proc.stdout + proc.stderr  # the lean checkpoint is complete
    result = json.loads(metrics.read_text())
    assert {'gIoU', 'cIoU', 'short/gIoU', 'long/gIoU'} <= set(result)


def test_errors_name_the_problem(lisa, tmp_path):
    src = _write(lisa, tmp_path / 'src', 'safetensors')
    with pytest.raises(FileNotFoundError, match='do not contain the CLIP tower.*--vision-tower'):
        convert_lisa_checkpoint(src, str(tmp_path / 'o1'), DEMO)
    with pytest.raises(ValueError, match=r"not in LISA's layout.*model\.extra"):
        map_keys(['lm_head.weight', 'model.extra.weight'])
    with pytest.raises(ValueError, match='raw LISA training checkpoint.*merge'):
        map_keys(['base_model.model.lm_head.weight'])
    small_sam = dict(model=dict(head=dict(decoder_mlp_dim=128)))
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(small_sam)
    with pytest.raises(ValueError, match=r'do not fit the config.*mlp\.lin1\.weight'):
        convert_lisa_checkpoint(src, str(tmp_path / 'o2'), cfg, vision_tower=str(lisa.clip_dir))
    no_seg = tmp_path / 'no_seg'
    no_seg.mkdir()
    WordTokenizer().save_pretrained(no_seg)
    (no_seg / 'config.json').write_text(json.dumps(lisa.config))
    save_file({'lm_head.weight': torch.zeros(2, 2)}, no_seg / 'model.safetensors')
    with pytest.raises(ValueError, match=r"no '\[SEG\]' token"):
        convert_lisa_checkpoint(str(no_seg), str(tmp_path / 'o3'), DEMO)


@pytest.mark.parametrize('model', ['llava-v1-7b', 'llava-llama2-13b'])
@pytest.mark.parametrize('data', ['reasonseg', 'refcoco', 'grefcoco'])
def test_eval_configs_use_lisas_v1_layout(model, data):
    cfg = Config.fromfile(f'{REPO}/configs/lisa/lisa_{model}_sam-vit-h_eval_{data}.py')
    folder = 'data/lisa/' + ('LISA-7B-v1' if '7b' in model else 'LISA-13B-llama2-v1')
    backbone = cfg.model.backbone
    # one path: llava/ gives the weights, the tokenizer and the CLIP size (224 px)
    assert backbone.pretrained == f'{folder}/llava' and 'tokenizer' not in backbone
    assert backbone.processor == dict(template='llava_v1', max_length=512, layout='per_query')
    assert (backbone.projector_type, backbone.use_im_start_end) == ('linear', True)
    assert backbone.seg_token == '[SEG]' and backbone.vision_feature_layer == -2
    # one SAM path: the head takes the encoder's checkpoint
    assert cfg.model.sam_encoder.checkpoint == f'{folder}/sam.pth'
    assert 'checkpoint' not in cfg.model.head
    steps = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert steps[0] == 'LoadImageFromFile' and steps[-2:] == ['SAMPreprocess', 'PackLISAInputs']
    assert cfg.test_dataloader.dataset.pipeline[-2].img_size == 1024
    assert cfg.model.predict_mode == 'teacher_forced'
    assert cfg.test_dataloader.dataset.split == 'val' and cfg.train_dataloader is None
    assert dict(type='LeanCheckpointHook') in cfg.custom_hooks


def test_failed_rewrite_keeps_the_previous_files(lisa, tmp_path, monkeypatch):
    """Re-converting into a folder and failing mid-write (disk full) must leave the
    earlier checkpoint files whole, and no temporary files behind."""
    src = _write(lisa, tmp_path / 'src', 'safetensors')
    out = tmp_path / 'out'
    convert_lisa_checkpoint(src, str(out), DEMO, vision_tower=str(lisa.clip_dir))
    names = ('sam.pth', 'lisakit_checkpoint.pth', 'export_info.json')
    before = {name: (out / name).read_bytes() for name in names}

    def save_until_disk_full(obj, f, *args, **kwargs):
        with open(f, 'wb') as handle:
            handle.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', save_until_disk_full)
    with pytest.raises(OSError, match='No space left'):
        convert_lisa_checkpoint(
            src, str(out), DEMO, vision_tower=str(lisa.clip_dir), dtype='bfloat16'
        )
    assert {name: (out / name).read_bytes() for name in names} == before
    assert not list(out.glob('.tmp-*'))
