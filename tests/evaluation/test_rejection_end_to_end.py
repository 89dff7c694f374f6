"""A generated answer without <SEG> is a rejection: the tiny model (with <SEG> banned from
generation) predicts no mask, and GRefCOCOMetric counts it as rejected on the multi /
no-target shapes config's own val data (N-acc 1 on no-target samples, T-acc 0 on targets);
forcing the answer "<SEG>." gives one mask per sample and no rejection where it is
non-empty."""

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from tool_runner import REPO

from lisakit.evaluation import GRefCOCOMetric
from lisakit.registry import DATASETS, MODELS

CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes-multi.py')


def _predict(model, batch, **generation_cfg):
    model.generation_cfg = dict(max_new_tokens=4, **generation_cfg)
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        return model(**data, mode='predict')


def _score(samples):
    metric = GRefCOCOMetric()
    metric.process({}, [s.to_dict() for s in samples])
    return metric.compute_metrics(metric.results)


@pytest.mark.slow
def test_answer_without_seg_is_a_rejection():
    init_default_scope('lisakit')
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert model.predict_mode == 'generate'
    ds_cfg = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    ds_cfg['num_samples'] = 6
    dataset = DATASETS.build(ds_cfg)
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    kinds = [s.no_target for s in batch['data_samples']]
    assert any(kinds) and not all(kinds)

    seg_id = model.backbone.tokenizer.convert_tokens_to_ids('<SEG>')
    rejected = _predict(model, batch, bad_words_ids=[[seg_id]])
    for sample in rejected:
        assert sample.num_generated_seg == 0 and '<SEG>' not in sample.pred_text
        assert sample.pred_masks.shape == sample.gt_masks.shape == (1, 64, 64)
        assert not sample.pred_masks.any()
    metrics = _score(rejected)
    assert metrics['N-acc'] == 1.0 and metrics['T-acc'] == 0.0

    tok = model.backbone.tokenizer
    answer = tok('<SEG> .', add_special_tokens=False)['input_ids'] + [tok.eos_token_id]
    start = {}

    def force(batch_id, ids):  # constrained decoding: the answer '<SEG>.'
        first = start.setdefault(batch_id, len(ids))
        return [answer[min(len(ids) - first, len(answer) - 1)]]

    for i in (kinds.index(True), kinds.index(False)):
        start.clear()
        one = pseudo_collate([dataset[i]])
        sample = _predict(model, one, prefix_allowed_tokens_fn=force)[0]
        assert sample.num_generated_seg == 1
        score = _score([sample])
        empty = not sample.pred_masks.any()
        key = 'N-acc' if sample.no_target else 'T-acc'
        assert score[key] == float(empty if sample.no_target else not empty)
