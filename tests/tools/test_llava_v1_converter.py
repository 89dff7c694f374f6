"""tools/model_converters/llava_v1_to_hf.py on a tiny model in LLaVA-v1's original layout.

The source is the LLaMA / CLIP / ``mm_projector`` part of test_lisa_converter's tiny LISA
(``LlavaLlamaForCausalLM`` keys and config.json, LLaVA-v1's tokenizer without '[SEG]'). The
converted folder must load with the LISA repro recipe's backbone settings and give the
logits of LLaVA-v1's own forward (llava_arch.py's splicing) computed on the source modules.
"""

import json
import os.path as osp
import runpy
import sys

import pytest
import test_lisa_converter
import torch
from mmengine.config import Config
from safetensors.torch import save_file
from test_lisa_converter import INV_FREQ, llava_v1_tokenizer
from tool_runner import REPO

from lisakit.models.converters import convert_llava_v1_checkpoint
from lisakit.registry import MODELS
from lisakit.tokenizers import WordTokenizer

REPRO = (
    f'{REPO}/configs/lisa/lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_8xb2-accum10-zero2_lisa-mix.py'
)
TOOL = osp.join(REPO, 'tools', 'model_converters', 'llava_v1_to_hf.py')
HINT = '(add --debug for the traceback)'
lisa = test_lisa_converter.lisa  # the tiny LISA's modules (fixture)
EMBEDS = ('model.embed_tokens.weight', 'lm_head.weight')


def _write_llava_v1(lisa, folder, tok, extra=None, saved_tok=None) -> str:
    """An original LLaVA-v1 folder: LLaMA + mm_projector weights (embedding rows for the
    tokens of ``tok``), mm_* config, and ``saved_tok`` (default ``tok``)."""
    rows = len(tok)
    state = dict(lisa.llama.state_dict())
    state.update({k: state[k][:rows].clone() for k in EMBEDS})  # no '[SEG]' row
    state[INV_FREQ] = torch.rand(16)
    state.update({f'model.mm_projector.{k}': v for k, v in lisa.projector.state_dict().items()})
    state.update(extra or {})
    config = {k: v for k, v in lisa.config.items() if k not in ('out_dim', 'train_mask_decoder')}
    config.update(
        architectures=['LlavaLlamaForCausalLM'],
        vocab_size=rows,
        mm_vision_tower=config.pop('vision_tower'),
        mm_use_im_patch_token=False,
    )
    folder.mkdir()
    (folder / 'config.json').write_text(json.dumps(config))
    (saved_tok or tok).save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / 'model.safetensors')
    return str(folder)


def _run_tool(monkeypatch, *args) -> int:
    """``python tools/model_converters/llava_v1_to_hf.py ARGS`` in this process."""
    monkeypatch.setattr(sys, 'argv', ['llava_v1_to_hf.py', *map(str, args)])
    monkeypatch.delenv('LISAKIT_DEBUG', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(TOOL, run_name='__main__')
    return exit_info.value.code


@torch.no_grad()
def _llava_v1_logits(lisa, ids: list, image_id: int, start_end: tuple, pixels) -> torch.Tensor:
    """LLaVA-v1's forward on the source modules: CLIP layer -2 patches -> mm_projector,
    spliced between <im_start> and <im_end> where the image placeholder is."""
    pos = ids.index(image_id)
    clip = lisa.clip(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    feats = lisa.projector(clip)[0]  # (N, D)
    embed = lisa.llama.model.embed_tokens
    embeds = torch.cat(
        [
            embed(torch.tensor(ids[:pos] + [start_end[0]])),
            feats,
            embed(torch.tensor([start_end[1]] + ids[pos + 1 :])),
        ]
    )
    return lisa.llama(inputs_embeds=embeds[None]).logits[0]  # (L', V)


def test_converted_folder_loads_in_the_repro_recipe_and_matches_llava_v1(
    lisa, tmp_path, monkeypatch, capsys
):
    tok = llava_v1_tokenizer()
    src = _write_llava_v1(lisa, tmp_path / 'src', tok)
    out = tmp_path / 'hf'
    assert _run_tool(monkeypatch, src, lisa.clip_dir, out) in (0, None)
    printed = capsys.readouterr().out
    assert f'dropped {INV_FREQ}: RoPE' in printed and "added ['<image>']" in printed
    config = json.loads((out / 'config.json').read_text())
    assert (config['projector_type'], config['vision_feature_layer']) == ('linear', -2)
    assert not (out / 'sam.pth').exists()

    backbone = Config.fromfile(REPRO).model.backbone
    backbone.update(pretrained=str(out), torch_dtype='float32')
    model = MODELS.build(backbone).eval()
    assert (
        model.hf_model.model.multi_modal_projector.linear.in_features == lisa.projector.in_features
    )
    start_end = tuple(tok.convert_tokens_to_ids(['<im_start>', '<im_end>']))
    assert (model.im_start_id, model.im_end_id) == start_end  # LLaVA-v1's trained rows
    assert model.seg_token_id >= len(tok) + 1  # '[SEG]' added at load, as LISA's training
    words = model.tokenizer('the red shape', add_special_tokens=False)['input_ids']
    ids = [tok.bos_token_id, *words[:1], model.image_token_id, *words[1:]]
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out_logits = model(
            torch.tensor([ids]),
            torch.ones(1, len(ids), dtype=torch.long),
            dict(pixel_values=pixels),
        )['logits'][0]
    reference = _llava_v1_logits(lisa, ids, model.image_token_id, start_end, pixels)
    assert out_logits.shape[0] == reference.shape[0] == len(ids) + 1 + 16  # 4x4 patches
    torch.testing.assert_close(out_logits[:, : len(tok)], reference[:, : len(tok)])


def test_errors_are_one_line(lisa, tmp_path, monkeypatch, capsys):
    tok = llava_v1_tokenizer()
    src = _write_llava_v1(lisa, tmp_path / 'src', tok)
    cases = [
        ((tmp_path / 'nope', lisa.clip_dir), "LLaVA-v1 folder '{p}/nope' does not exist"),
        ((src, tmp_path / 'nope'), "CLIP folder '{p}/nope' does not exist"),
        ((src, tmp_path), '{p} has no config.json; expected a Hugging Face CLIP model'),
    ]
    for (source, clip), expected in cases:
        assert _run_tool(monkeypatch, source, clip, tmp_path / 'o') == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith('llava_v1_to_hf.py: error: ') and last.endswith(HINT), last
        assert expected.format(p=tmp_path) in last, last
    sam = {'model.visual_model.mask_decoder.iou_token.weight': torch.zeros(1, 64)}
    lisa_src = _write_llava_v1(lisa, tmp_path / 'lisa', tok, extra=sam)
    with pytest.raises(ValueError, match='holds LISA weights.*lisa_to_lisakit.py'):
        convert_llava_v1_checkpoint(lisa_src, str(lisa.clip_dir), str(tmp_path / 'o'))
    # LLaMA's tokenizer next to LLaVA-v1's weights: <im_start> would land on <im_patch>'s row
    plain = _write_llava_v1(lisa, tmp_path / 'plain', tok, saved_tok=WordTokenizer())
    with pytest.raises(ValueError, match=r"\['<im_start>', '<im_end>'\]; copy the tokenizer"):
        convert_llava_v1_checkpoint(plain, str(lisa.clip_dir), str(tmp_path / 'o'))
    (tmp_path / 'src' / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match='holds no weights'):
        convert_llava_v1_checkpoint(src, str(lisa.clip_dir), str(tmp_path / 'o'))
