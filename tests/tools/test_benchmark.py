"""tools/analysis_tools/benchmark.py runs on the tiny config and reports every number."""

import json
import os.path as osp
import sys

import torch
from mmengine.dataset import pseudo_collate
from tool_runner import DEMO, REPO, SMALL, output, run_tool

KEYS = (
    'runner_step_s', 'plain_step_s', 'data_time_s', 'peak_memory_gb', 'peak_memory_source',
    'inference_s_per_sample', 'train_tokens_per_s', 'runner_overhead', 'runner_overheads',
    'runner_overhead_step', 'runner_build_s', 'runner_epoch_end_s', 'step_clock',
)  # fmt: skip


def test_benchmark_reports_all_keys(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool(
        'analysis_tools/benchmark.py', DEMO, '--iters', '2', '--warmup', '1', '--repeats', '2',
        '--threads', '1', '--out', str(out), '--work-dir', str(tmp_path / 'work'),
        '--cfg-options', *SMALL,
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    report = json.loads(out.read_text())
    assert set(KEYS) <= set(report), set(KEYS) - set(report)
    for key in ('runner_step_s', 'plain_step_s', 'data_time_s', 'peak_memory_gb',
                'inference_s_per_sample', 'train_tokens_per_s'):  # fmt: skip
        assert report[key] > 0, key
    assert report['peak_memory_source'] == 'process_peak_rss'
    assert len(report['runner_overheads']) == 2  # one per repeat
    assert (report['iters'], report['warmup'], report['batch_size']) == (2, 1, 8)
    assert 'Runner overhead (median of repeats)' in proc.stdout
    # the Runner side ran the config's hooks: checkpoint and history in its work dir
    for run in ('run0', 'run1'):
        assert (tmp_path / 'work' / run / 'epoch_1.pth').is_file()
        assert (tmp_path / 'work' / run / 'training_history.json').is_file()


def test_llm_tokens_counts_the_expanded_sequence(tiny_model_cfg, small_dataset_cfg):
    """Train tokens/s counts every LLM position: with LLaVA-v1's <im_start>/<im_end>
    (use_im_start_end) the expanded sequence is longer than the image features alone."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import benchmark

    from lisakit.registry import DATASETS, MODELS

    tiny_model_cfg['backbone'].update(projector_type='linear', use_im_start_end=True)
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg)
    dataset = DATASETS.build(small_dataset_cfg('train', 2))
    batch = pseudo_collate([dataset[0], dataset[1]])
    inputs = model.data_preprocessor(batch, True)['inputs']
    _, mask, _ = model.backbone.expand_image_tokens(inputs['input_ids'], inputs['attention_mask'])
    assert benchmark.llm_tokens(model, batch) == int(mask.sum())
