"""The checkpoint-format module: lean keys, format version, token ids and load checks."""

import pytest
import torch
from torch import nn

from lisakit.utils.checkpoint import CheckpointError, load_from_lisakit_safe
from lisakit.utils.checkpoint_format import (
    FORMAT_VERSION,
    META_KEY,
    check_lean_keys,
    complete_lean_state,
    export_info,
    is_lean,
    lean_checkpoint,
    make_lean,
    token_info,
)

SEG_ID, IMAGE_ID, VOCAB = 5, 3, 7


class Backbone(nn.Module):
    """A frozen embedding and a trainable projection, with a tokenizer's facts."""

    def __init__(self, seg_token_id: int = SEG_ID):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 4).requires_grad_(False)
        self.proj = nn.Linear(4, 2)
        self.tokenizer = [f'tok{i}' for i in range(VOCAB)]
        self.seg_token_id, self.image_token_id = seg_token_id, IMAGE_ID


class Segmentor(nn.Module):
    def __init__(self, seg_token_id: int = SEG_ID):
        super().__init__()
        self.backbone = Backbone(seg_token_id)
        self.head = nn.Linear(2, 1)


def _saved(model: nn.Module) -> dict:
    checkpoint = dict(state_dict=model.state_dict(), meta=dict(cfg='...'))
    make_lean(model, checkpoint)
    return checkpoint


def test_make_lean_keeps_trainable_weights_and_records_the_format():
    checkpoint = _saved(Segmentor())
    info = checkpoint['meta'][META_KEY]
    assert set(checkpoint['state_dict']) == {
        'backbone.proj.weight',
        'backbone.proj.bias',
        'head.weight',
        'head.bias',
    }
    assert info['trainable_keys'] == sorted(checkpoint['state_dict'])
    assert info['format_version'] == FORMAT_VERSION and info['lean']
    assert info['tokens'] == dict(seg_token_id=SEG_ID, image_token_id=IMAGE_ID, vocab_size=VOCAB)
    assert 'torch' in info['versions'] and checkpoint['meta']['cfg'] == '...'


def test_complete_lean_state_round_trips_through_a_file(tmp_path):
    torch.manual_seed(0)
    trained = Segmentor()
    path = tmp_path / 'lean.pth'
    torch.save(_saved(trained), path)
    fresh = Segmentor()
    fresh.backbone.embed.load_state_dict(trained.backbone.embed.state_dict())  # the config
    checkpoint = load_from_lisakit_safe(str(path), map_location='cpu')
    complete_lean_state(fresh, checkpoint)
    fresh.load_state_dict(checkpoint['state_dict'], strict=True)
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_files_without_a_format_version_still_load():
    """The layout written before ``format_version`` was recorded (main until now)."""
    model = Segmentor()
    checkpoint = _saved(model)
    del checkpoint['meta'][META_KEY]['format_version']
    assert is_lean(checkpoint) and check_lean_keys(model, checkpoint)


def test_a_newer_format_version_is_refused():
    checkpoint = _saved(Segmentor())
    checkpoint['meta'][META_KEY]['format_version'] = FORMAT_VERSION + 1
    with pytest.raises(CheckpointError, match=f'format version {FORMAT_VERSION + 1}'):
        check_lean_keys(Segmentor(), checkpoint)


def test_full_checkpoints_are_not_lean():
    model = Segmentor()
    assert not check_lean_keys(model, dict(state_dict=model.state_dict(), meta={}))


def test_other_trainable_parameters_are_named():
    checkpoint = _saved(Segmentor())
    model = Segmentor()
    model.head.requires_grad_(False)
    with pytest.raises(ValueError, match=r"2 unexpected \['head.bias', 'head.weight'\]"):
        check_lean_keys(model, checkpoint)


def test_another_seg_token_id_is_named():
    checkpoint = _saved(Segmentor())
    with pytest.raises(ValueError, match=f'seg_token_id: {SEG_ID} in the file vs 6 in the model'):
        check_lean_keys(Segmentor(seg_token_id=6), checkpoint)


def test_converted_and_exported_records_share_the_token_facts():
    model = Segmentor()
    state = {k: v for k, v in model.state_dict().items() if 'embed' not in k}
    converted = lean_checkpoint(state, token_info(model), converted_from='/src')
    assert check_lean_keys(model, converted)
    assert converted['meta'][META_KEY]['converted_from'] == '/src'
    info = export_info(model, lisakit_tensors=4)
    assert info['seg_token_id'] == SEG_ID and info['vocab_size'] == VOCAB
    assert info['format_version'] == FORMAT_VERSION and info['lisakit_tensors'] == 4
