"""The structured ``trainable`` config of the backbones and its deprecated flags."""

import copy

import pytest
import torch

from lisakit.models.backbones.trainable import (
    TrainableParts,
    build_trainable,
    drop_deprecated_keys,
)
from lisakit.registry import MODELS


@pytest.mark.parametrize(
    ('trainable', 'message'),
    [
        (dict(llm='lora'), r"Unknown model.backbone.trainable keys \['llm'\]"),
        (dict(language_model='qlora'), r"language_model='qlora'; expected one of \('frozen'"),
        (dict(embeddings='rows'), r"embeddings='rows'; expected one of \('none', 'seg_rows'"),
        (dict(language_model='full', embeddings='seg_rows'), 'already trains the input'),
    ],
)
def test_errors_name_the_key_and_the_allowed_values(trainable, message):
    with pytest.raises(ValueError, match=message):
        build_trainable(trainable)


def test_clashes_with_lora_and_quantization():
    with pytest.raises(TypeError, match='trainable.vision_tower=1; expected True or False'):
        build_trainable(dict(vision_tower=1))
    with pytest.raises(ValueError, match="lora is set but .*language_model='frozen'"):
        build_trainable(None, lora=dict(r=4))
    with pytest.raises(ValueError, match='quantized language model cannot train in full'):
        build_trainable(dict(language_model='full'), quantization=dict(bits=4))
    parts = build_trainable(dict(language_model='lora', embeddings='seg_rows'), lora=None)
    assert parts.lora and parts.seg_rows and not parts.vision_tower
    assert build_trainable(None) == TrainableParts()  # everything frozen


def test_legacy_flags_map_with_a_warning():
    with pytest.warns(FutureWarning, match=r"\['freeze_language_model', 'train_seg_token_rows'\]"):
        parts = build_trainable(
            None, lora=dict(r=4), freeze_language_model=True, train_seg_token_rows=True
        )
    assert parts == TrainableParts(language_model='lora', embeddings='seg_rows')
    # legacy flags override the keys they map to (as the export / inference helpers use them)
    with pytest.warns(FutureWarning):
        parts = build_trainable(
            dict(language_model='lora', embeddings='seg_rows', vision_tower=True),
            lora=None,
            freeze_language_model=True,
            train_seg_token_rows=False,
            freeze_vision_tower=True,
        )
    assert parts == TrainableParts()
    with pytest.warns(FutureWarning):
        assert build_trainable(None, freeze_language_model=False).language_model == 'full'
    with pytest.raises(ValueError, match='not both'), pytest.warns(FutureWarning):
        build_trainable(None, train_seg_token_rows=True, train_embeddings=True)
    with pytest.raises(TypeError, match=r"arguments \['freeze_llm'\]"):
        build_trainable(None, freeze_llm=True)


def _trainable_names(tiny_cfg, **overrides):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg.update(overrides)
    torch.manual_seed(0)
    backbone = MODELS.build(cfg)
    return sorted(n for n, p in backbone.named_parameters() if p.requires_grad)


def test_legacy_backbone_trains_the_same_parts(tiny_cfg):
    lora = dict(r=4, alpha=8, dropout=0.0)
    new = _trainable_names(
        tiny_cfg,
        trainable=dict(projector=True, language_model='lora', embeddings='seg_rows'),
        lora=lora,
    )
    with pytest.warns(FutureWarning, match='deprecated'):
        old = _trainable_names(
            tiny_cfg,
            trainable=None,
            lora=lora,
            freeze_projector=False,
            freeze_language_model=True,
            train_seg_token_rows=True,
        )
    assert new == old
    assert any('multi_modal_projector' in n for n in new)
    assert any('trainable_tokens' in n for n in new) and any('lora_' in n for n in new)


def test_drop_deprecated_keys_removes_only_the_replaced_keys_old_spellings():
    old = dict(tokenizer='tok', freeze_projector=False, train_embeddings=True, lora=None)
    backbone = dict(old)
    drop_deprecated_keys(backbone, ['processor.tokenizer'])  # trainable is kept: so are its flags
    assert backbone == dict(freeze_projector=False, train_embeddings=True, lora=None)
    drop_deprecated_keys(backbone)
    assert backbone == dict(lora=None)
