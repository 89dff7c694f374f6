"""LLaVA layouts (LLaVA-1.5 MLP projector, LLaVA-v1 linear projector + <im_start>/<im_end>),
local Hugging Face folders loaded through configs, and the errors for bad local weights."""

import copy
import json

import pytest
import torch

from lisakit.models.backbones.projectors import LinearMultiModalProjector
from lisakit.registry import MODELS

V1_OPTIONS = dict(projector_type='linear', use_im_start_end=True)


def _backbone_cfg(tiny_cfg, **overrides) -> dict:
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg.update(overrides)
    return cfg


def _build(cfg: dict):
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _inputs(backbone):
    tok = backbone.tokenizer
    ids = [tok.bos_token_id] + tok('<image>\nsegment the red shape <SEG> .')['input_ids']
    input_ids = torch.tensor([ids])
    size = backbone.hf_model.config.vision_config.image_size
    torch.manual_seed(1)
    return input_ids, torch.ones_like(input_ids), dict(pixel_values=torch.randn(1, 3, size, size))


def _save(backbone, folder):
    backbone.hf_model.save_pretrained(folder / 'llava')
    backbone.tokenizer.save_pretrained(folder / 'tokenizer')
    return dict(
        pretrained=str(folder / 'llava'),
        processor=dict(tokenizer=str(folder / 'tokenizer')),
        llava_config=None,
    )


def test_v1_layout_linear_projector_and_image_delimiters(tiny_cfg):
    backbone = _build(_backbone_cfg(tiny_cfg, **V1_OPTIONS))
    hf = backbone.hf_model
    assert isinstance(hf.model.multi_modal_projector, LinearMultiModalProjector)
    assert hf.model.multi_modal_projector.linear.weight.shape == (128, 64)  # (D, CLIP width)
    assert backbone.num_image_tokens == 16 and backbone.num_expanded_tokens == 18
    ids, mask, pixels = _inputs(backbone)
    pos = int((ids[0] == backbone.image_token_id).nonzero())
    expanded, _, _ = backbone.expand_image_tokens(ids, mask)
    row = expanded[0].tolist()
    assert row[pos] == backbone.im_start_id and row[pos + 17] == backbone.im_end_id
    assert row[pos + 1 : pos + 17] == [backbone.image_token_id] * 16
    assert row[:pos] == ids[0, :pos].tolist() and row[pos + 18 :] == ids[0, pos + 1 :].tolist()
    out = backbone(ids, mask, pixels)
    seg_pos = row.index(backbone.seg_token_id)
    torch.testing.assert_close(out['seg_embeds'][0], out['hidden_states'][0, seg_pos - 1 : seg_pos])


@pytest.mark.parametrize('layout', [dict(), V1_OPTIONS], ids=['llava-1.5', 'llava-v1'])
def test_save_pretrained_folder_loads_through_the_config(tiny_cfg, tmp_path, layout):
    source = _build(_backbone_cfg(tiny_cfg, **layout))
    model_cfg = copy.deepcopy(tiny_cfg.model.to_dict())
    model_cfg['backbone'].update(_save(source, tmp_path), **layout)
    model = MODELS.build(model_cfg)
    loaded = model.backbone
    assert type(loaded.hf_model) is type(source.hf_model)
    own, ref = loaded.hf_model.state_dict(), source.hf_model.state_dict()
    assert own.keys() == ref.keys()
    assert all(torch.equal(own[k], ref[k]) for k in ref)
    with torch.no_grad():
        a, b = loaded(*_inputs(loaded)), source(*_inputs(source))
    torch.testing.assert_close(a['logits'], b['logits'])
    # The projector type is read from the folder when the config leaves it out.
    cfg = _backbone_cfg(tiny_cfg, **_save(source, tmp_path), use_im_start_end=False)
    assert type(MODELS.build(cfg).hf_model) is type(source.hf_model)


def test_folder_errors_name_the_file_and_the_fix(tiny_cfg, tmp_path):
    source = _build(_backbone_cfg(tiny_cfg, **V1_OPTIONS))
    paths = _save(source, tmp_path)
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere.*not a local folder'):
        MODELS.build(_backbone_cfg(tiny_cfg, **dict(paths, pretrained=missing)))
    with pytest.raises(FileNotFoundError, match='hub id.*no local copy.*hf download'):
        MODELS.build(_backbone_cfg(tiny_cfg, **dict(paths, pretrained='lisakit-tests/no-model')))
    with pytest.raises(ValueError, match="config.json holds a 'linear' projector"):
        MODELS.build(_backbone_cfg(tiny_cfg, **paths, projector_type='mlp2x_gelu'))
    config_file = tmp_path / 'llava' / 'config.json'
    config = json.loads(config_file.read_text())
    config['text_config']['intermediate_size'] = 64
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r'llava: 6 weights do not fit.*mlp\.down_proj.*\(128'):
        MODELS.build(_backbone_cfg(tiny_cfg, **paths))
    config_file.write_text(json.dumps(dict(hidden_size=64, mm_hidden_size=32)))
    with pytest.raises(
        ValueError, match='original LLaVA-v1 / LISA.*lisa_to_lisakit.py.*llava_v1_to_hf.py'
    ):
        MODELS.build(_backbone_cfg(tiny_cfg, **paths))


def test_clip_image_size_and_options_are_checked(tiny_cfg):
    backbone = _build(_backbone_cfg(tiny_cfg, **V1_OPTIONS))
    ids, mask, _ = _inputs(backbone)
    with pytest.raises(ValueError, match='processor.image_size.*must give 32'):
        backbone(ids, mask, dict(pixel_values=torch.randn(1, 3, 48, 48)))
    with pytest.raises(ValueError, match="projector_type='mlp3x'"):
        MODELS.build(_backbone_cfg(tiny_cfg, projector_type='mlp3x'))
    with pytest.raises(ValueError, match='vision_feature_select_strategy'):
        MODELS.build(_backbone_cfg(tiny_cfg, vision_feature_select_strategy='cls'))


def test_vision_feature_options_reach_the_hf_config(tiny_cfg):
    backbone = _build(
        _backbone_cfg(tiny_cfg, vision_feature_layer=-1, vision_feature_select_strategy='full')
    )
    config = backbone.hf_model.config
    assert config.vision_feature_layer == -1 and config.vision_feature_select_strategy == 'full'
    assert backbone.num_image_tokens == 17  # 16 patches + CLS
    ids, mask, pixels = _inputs(backbone)
    assert backbone(ids, mask, pixels)['hidden_states'].shape[1] == ids.shape[1] + 16


def test_sam_size_name_error_lists_the_sizes():
    with pytest.raises(ValueError, match=r"arch='vit_x' is unknown.*\['vit_b', 'vit_h', 'vit_l'\]"):
        MODELS.build(dict(type='SAMImageEncoder', arch='vit_x'))
