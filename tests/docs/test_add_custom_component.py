"""docs/add_custom_component.md stays true: its ``# excerpt of <file>`` blocks are lines of
that file in order, and its backbone example (``# my_project/...`` blocks) runs as written."""

import os
import re
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tool_runner import REPO

from lisakit.registry import MODELS, PROCESSORS

DOC = os.path.join(REPO, 'docs', 'add_custom_component.md')
BLOCK = re.compile(r'```python\n(.*?)```', re.S)
EXCERPT = re.compile(r'# excerpt of (\S+)\n')
SKIP = '...'
USER_FILE = re.compile(r'# (my_project/\S+\.py)\n')


def _blocks():
    with open(DOC, encoding='utf-8') as f:
        return BLOCK.findall(f.read())


def _excerpts():
    return [(m.group(1), b[m.end() :]) for b in _blocks() if (m := EXCERPT.match(b))]


def test_the_doc_has_excerpts_of_the_backbone_and_head_code():
    files = {path for path, _ in _excerpts()}
    assert {
        'lisakit/models/processors/qwen2_5_vl_processor.py',
        'lisakit/models/backbones/qwen2_5_vl.py',
        'lisakit/models/heads/sam2_head.py',
    } <= files


@pytest.mark.parametrize(
    'path, body', [pytest.param(p, b, id=f'{p}#{k}') for k, (p, b) in enumerate(_excerpts())]
)
def test_excerpt_lines_are_in_the_file_in_order(path, body):
    with open(os.path.join(REPO, path), encoding='utf-8') as f:
        source = [line.strip() for line in f]
    pos = 0
    for line in body.splitlines():
        line = line.strip()
        if not line or line == SKIP:
            continue
        assert line in source[pos:], f'{path}: {line!r} not found after line {pos}'
        pos = source.index(line, pos) + 1


@pytest.fixture()
def user_project(tmp_path):
    """The doc's ``my_project`` files, written as they are, next to the repo's configs."""
    for block in _blocks():
        m = USER_FILE.match(block)
        if m:
            target = tmp_path / m.group(1)
            target.parent.mkdir(exist_ok=True)
            target.write_text(block)
    (tmp_path / 'configs').symlink_to(os.path.join(REPO, 'configs'))
    sys.path.insert(0, str(tmp_path))
    yield tmp_path / 'my_project'
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.split('.')[0] == 'my_project']:
        del sys.modules[name]
    PROCESSORS.module_dict.pop('FixedSizeQwenProcessor', None)


def test_backbone_example_builds_and_runs(user_project):
    init_default_scope('lisakit')
    cfg = Config.fromfile(str(user_project / 'my_qwen_config.py'))
    torch.manual_seed(0)
    backbone = MODELS.build(cfg.model.backbone.to_dict()).eval()
    processor = backbone.processor
    assert type(processor).__name__ == 'FixedSizeQwenProcessor'
    image = np.random.default_rng(0).integers(0, 256, (50, 80, 3), dtype=np.uint8)
    sample = processor(image, [('<image>\nwhere is the red shape ?', 'it is <SEG> .')])
    (ids,) = sample['input_ids']
    assert int((ids == processor.image_token_id).sum()) == processor.num_tokens
    assert sample['kept_masks'] == [0]
    vision = processor.collate_vision([sample['vision']], torch.tensor([0]))
    assert vision['image_grid_thw'].tolist() == [[1, 8, 8]]  # 64 px / patch 8
    with torch.no_grad():
        out = backbone(ids[None], torch.ones_like(ids)[None], vision, sample['labels'][0][None])
    assert [tuple(s.shape) for s in out['seg_embeds']] == [(1, backbone.hidden_size)]
