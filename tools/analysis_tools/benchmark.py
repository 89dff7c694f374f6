"""Speed and memory of a config, and the mmengine Runner's overhead over a plain loop.

``python tools/analysis_tools/benchmark.py CONFIG [--iters 20] [--warmup 5] [--repeats 5]
[--threads N] [--out bench.json] [--cfg-options ...]`` prints a table and (with ``--out``)
writes JSON.

What is measured, in one process on one device:

* **Runner overhead.** ``--warmup + --iters`` training batches are drawn once from the
  config's train dataloader and cached, so data loading is excluded from both sides. The
  same model (``init_weights()`` once, then reset to those weights before every run)
  trains on them

  - in a plain PyTorch loop: ``model.data_preprocessor`` -> ``model(mode='loss')`` -> sum of
    the ``loss*`` terms -> ``backward`` -> ``clip_grad_norm_`` / ``clip_grad_value_`` as the
    config's ``optim_wrapper.clip_grad`` says -> ``optimizer.step`` (the optimizer mmengine
    builds from the config: same type, settings and parameter groups) -> ``zero_grad``;
  - through mmengine's ``Runner.train()`` with the config's default and custom hooks
    (timer, logger, param scheduler, checkpoint, training history, ...) and optimizer
    wrapper, for one epoch over the cached batches, without validation.

  A timed span runs from the start of the first iteration after the warm-up to the end of
  the last one (for the Runner: its first and last hook calls of those iterations), so it
  holds every per-iteration cost of the Runner, the logger's every-N-iterations work
  included; one-off costs (building the Runner, the epoch-end checkpoint and history
  files) are reported apart. Clock: wall time after ``torch.cuda.synchronize()`` on GPU;
  on CPU the process's CPU time (``time.process_time``), which other programs on a busy
  machine do not inflate (use ``--threads 1`` there: idle OpenMP threads spin). The two
  sides alternate (plain first on even repeats, Runner first on odd ones); the overhead
  is the median over repeats of ``Runner span / plain span - 1`` (``runner_overhead_step``:
  the ratio of the median step times, blind to every-N-iterations work). AMP configs run the
  plain loop under the same autocast (and a grad scaler for float16). Gradient
  accumulation is set to 1 on both sides.
* **Train step time** (median per iteration, each side), **data time** (median time to fetch
  one batch from the real train dataloader after the warm-up), **peak memory** (CUDA max
  allocated, or the process's peak RSS without CUDA), **inference latency** per sample
  (teacher-forced ``predict`` on val batches, preprocessing included, data loading not)
  and **train tokens/s** (LLM positions per batch, ``<image>`` expanded, over the Runner's
  median step time).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from lisakit.engine.hooks.training_history_hook import peak_memory_gb  # noqa: E402
from lisakit.engine.runtime import setup_runtime  # noqa: E402
from lisakit.registry import MODELS  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402

#: Keys of the JSON report.
REPORT_KEYS = (
    'runner_step_s',
    'plain_step_s',
    'data_time_s',
    'peak_memory_gb',
    'peak_memory_source',
    'inference_s_per_sample',
    'train_tokens_per_s',
    'runner_overhead',
    'runner_overheads',
    'runner_overhead_step',
    'runner_build_s',
    'runner_epoch_end_s',
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark a config and the Runner overhead')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per run')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    parser.add_argument('--repeats', type=int, default=5, help='plain/Runner run pairs')
    parser.add_argument(
        '--threads',
        type=int,
        help="torch CPU threads (default: torch's); 1 gives steadier timings on a busy machine",
    )
    parser.add_argument('--out', help='write the report to this JSON file')
    parser.add_argument('--work-dir', help='Runner work dir (default: a temporary folder)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    return parser.parse_args()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def step_clock() -> float:
    """Clock of the training comparison: wall time after a CUDA sync on GPU; on CPU the
    process's CPU time, which other programs on a busy machine do not inflate."""
    return time.perf_counter() if torch.cuda.is_available() else time.process_time()


def fetch_batches(loader_cfg: dict, count: int, warmup: int) -> tuple[list, float]:
    """``count`` collated batches of the config's loader and the median fetch time
    (seconds per batch, first ``warmup`` fetches excluded)."""
    loader = Runner.build_dataloader(copy.deepcopy(loader_cfg))
    batches, times = [], []
    while len(batches) < count:
        tic = time.perf_counter()
        for batch in loader:
            times.append(time.perf_counter() - tic)
            batches.append(batch)
            if len(batches) == count:
                break
            tic = time.perf_counter()
    return batches, statistics.median(times[warmup:] or times)


def cached_loader(batches: list) -> DataLoader:
    """A DataLoader over already collated batches (no workers, no copies)."""
    return DataLoader(batches, batch_size=1, collate_fn=lambda items: items[0])


def _precision(cfg: Config) -> tuple[Callable, Optional[torch.amp.GradScaler]]:
    """Autocast context and grad scaler matching the config's optimizer wrapper."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper' or not torch.cuda.is_available():
        return contextlib.nullcontext, None
    dtype = getattr(torch, str(wrapper.get('dtype') or 'float16').replace('torch.', ''))
    scaler = torch.amp.GradScaler('cuda') if dtype == torch.float16 else None
    return lambda: torch.autocast('cuda', dtype=dtype), scaler


def _clipper(cfg: Config) -> Optional[Callable]:
    """``torch.nn.utils`` clipping as ``optim_wrapper.clip_grad`` configures it."""
    clip = dict(cfg.optim_wrapper.get('clip_grad') or {})
    if not clip:
        return None
    kind = clip.pop('type', 'norm')
    fn = torch.nn.utils.clip_grad_norm_ if kind == 'norm' else torch.nn.utils.clip_grad_value_
    return lambda params: fn(params, **clip)


def plain_step(model, batch: dict, optimizer, params: list, precision: tuple, clip) -> None:
    """One plain PyTorch training step (its tensors are freed on return, as in Runner)."""
    autocast, scaler = precision
    with autocast():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)  # the sum BaseModel.train_step takes
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    if clip is not None:
        clip([p for p in params if p.grad is not None])
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    optimizer.zero_grad()


def plain_run(cfg: Config, model: torch.nn.Module, batches: list) -> list[tuple[float, float]]:
    """Train on ``batches`` in a plain loop; (start, end) time of every iteration."""
    optimizer = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper)).optimizer
    params = [p for group in optimizer.param_groups for p in group['params'] if p.requires_grad]
    precision, clip = _precision(cfg), _clipper(cfg)
    model.train()
    stamps = []
    for batch in cached_loader(batches):
        _sync()
        start = step_clock()
        plain_step(model, batch, optimizer, params, precision, clip)
        _sync()
        stamps.append((start, step_clock()))
    return stamps


class _Stamp(Hook):
    """Records the time of ``before_train_iter`` (priority HIGHEST: before every other
    hook) or of ``after_train_iter`` (priority LOWEST: after every other hook)."""

    def __init__(self, where: str) -> None:
        self.priority = 'HIGHEST' if where == 'before' else 'LOWEST'
        self.times: list[float] = []
        if where == 'before':
            self.before_train_iter = self._record
        else:
            self.after_train_iter = self._record

    def _record(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        _sync()
        self.times.append(step_clock())


def runner_run(
    cfg: Config, model: torch.nn.Module, batches: list, work_dir: str, run: int
) -> tuple[list[tuple[float, float]], float, float]:
    """Train on ``batches`` through ``Runner.train()`` with the config's hooks.

    Returns the (start, end) time of every iteration, the Runner build time and the time
    from the end of the last iteration to the end of ``train()`` (epoch-end hooks).
    """
    start, end = _Stamp('before'), _Stamp('after')
    tic = step_clock()
    runner = Runner(
        model=model,
        work_dir=osp.join(work_dir, f'run{run}'),
        experiment_name=f'benchmark_run{run}_{time.strftime("%Y%m%d_%H%M%S")}',
        train_dataloader=cached_loader(batches),
        optim_wrapper=copy.deepcopy(cfg.optim_wrapper),
        param_scheduler=copy.deepcopy(cfg.get('param_scheduler')),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=2),
        default_hooks=copy.deepcopy(cfg.get('default_hooks')),
        custom_hooks=[*copy.deepcopy(cfg.get('custom_hooks', [])), start, end],
        env_cfg=copy.deepcopy(cfg.get('env_cfg', dict(dist_cfg=dict(backend='nccl')))),
        log_processor=copy.deepcopy(cfg.get('log_processor')),
        log_level=cfg.get('log_level', 'INFO'),
        visualizer=dict(copy.deepcopy(cfg.get('visualizer') or {}), name=f'benchmark_run{run}'),
        default_scope=cfg.get('default_scope', 'lisakit'),
        randomness=copy.deepcopy(cfg.get('randomness', dict(seed=None))),
        cfg=cfg,
    )
    build_s = step_clock() - tic
    runner.train()
    epoch_end_s = step_clock() - end.times[-1]
    return list(zip(start.times, end.times)), build_s, epoch_end_s


def span(stamps: list[tuple[float, float]], warmup: int) -> float:
    """Seconds from the start of iteration ``warmup`` to the end of the last one."""
    return stamps[-1][1] - stamps[warmup][0]


def median_step(stamps: list[tuple[float, float]], warmup: int) -> float:
    return statistics.median(end - start for start, end in stamps[warmup:])


def compare(args, cfg: Config, model: torch.nn.Module, batches: list, work_dir: str) -> dict:
    """Alternate plain and Runner runs; medians of step times and of the overhead."""
    model.init_weights()  # as Runner.train() does; later calls are no-ops (mmengine)
    initial = copy.deepcopy(model.state_dict())
    plain_steps, runner_steps, overheads, builds, epoch_ends = [], [], [], [], []
    for run in range(args.repeats):
        order = ('plain', 'runner') if run % 2 == 0 else ('runner', 'plain')
        spans = {}
        for side in order:
            model.load_state_dict(initial)
            if side == 'plain':
                stamps = plain_run(cfg, model, batches)
                plain_steps.append(median_step(stamps, args.warmup))
            else:
                stamps, build_s, end_s = runner_run(cfg, model, batches, work_dir, run)
                runner_steps.append(median_step(stamps, args.warmup))
                builds.append(build_s)
                epoch_ends.append(end_s)
            spans[side] = span(stamps, args.warmup)
        overheads.append(spans['runner'] / spans['plain'] - 1)
        print(f'repeat {run}: plain {spans["plain"]:.3f} s, Runner {spans["runner"]:.3f} s, '
              f'overhead {100 * overheads[-1]:+.2f} %')  # fmt: skip
    return dict(
        plain_step_s=statistics.median(plain_steps),
        runner_step_s=statistics.median(runner_steps),
        runner_overhead=statistics.median(overheads),
        runner_overhead_step=statistics.median(runner_steps) / statistics.median(plain_steps) - 1,
        runner_overheads=overheads,
        runner_build_s=statistics.median(builds),
        runner_epoch_end_s=statistics.median(epoch_ends),
    )


def llm_tokens(model: torch.nn.Module, batch: dict) -> int:
    """LLM positions of a batch: text tokens with each ``<image>`` expanded (image
    features, plus ``<im_start>`` / ``<im_end>`` with ``use_im_start_end``)."""
    backbone = model.backbone
    ids = model.data_preprocessor(batch, True)['inputs']
    images = int((ids['input_ids'] == backbone.image_token_id).sum())
    return int(ids['attention_mask'].sum()) + images * (backbone.num_expanded_tokens - 1)


@torch.no_grad()
def inference_latency(model: torch.nn.Module, batches: list, warmup: int) -> float:
    """Median seconds per sample of teacher-forced ``predict`` (preprocessing included)."""
    model.eval()
    per_sample = []
    for batch in batches:
        _sync()
        tic = time.perf_counter()
        model(**model.data_preprocessor(batch, False), mode='predict')
        _sync()
        per_sample.append((time.perf_counter() - tic) / len(batch['data_samples']))
    return statistics.median(per_sample[warmup:] or per_sample)


def load_config(args: argparse.Namespace) -> Config:
    """The config with overrides; accumulation off (the plain loop has none)."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.iters < 1 or args.warmup < 0 or args.repeats < 1:
        raise ValueError('--iters and --repeats must be >= 1 and --warmup >= 0.')
    if cfg.get('runner_type', 'Runner') != 'Runner':
        raise ValueError(
            f'{args.config}: runner_type={cfg.runner_type!r}; the benchmark compares the '
            'default Runner with a plain single-process loop. Drop the runtime base config.'
        )
    cfg.optim_wrapper.pop('accumulative_counts', None)
    return cfg


def measure(args: argparse.Namespace, cfg: Config, work_dir: str) -> dict:
    """All numbers of the report (see the module docstring)."""
    count = args.warmup + args.iters
    batches, data_time = fetch_batches(cfg.train_dataloader, count, args.warmup)
    val_batches, _ = fetch_batches(cfg.val_dataloader, min(count, 1 + args.warmup), 0)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = MODELS.build(copy.deepcopy(cfg.model)).to(device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    result = compare(args, cfg, model, batches, work_dir)
    result['train_step_s'] = result['runner_step_s']
    result['data_time_s'] = data_time
    tokens = statistics.median(llm_tokens(model, b) for b in batches)
    result['train_tokens_per_s'] = tokens / result['runner_step_s']
    result['inference_s_per_sample'] = inference_latency(model, val_batches, 1)
    result['peak_memory_gb'], result['peak_memory_source'] = peak_memory_gb()
    result.update(
        config=args.config,
        device=torch.cuda.get_device_name() if device == 'cuda' else 'cpu',
        step_clock='wall' if device == 'cuda' else 'process_cpu',
        torch_threads=torch.get_num_threads(),
        iters=args.iters,
        warmup=args.warmup,
        repeats=args.repeats,
        batch_size=cfg.train_dataloader.batch_size,
        val_batch_size=cfg.val_dataloader.batch_size,
    )
    return result


def print_table(result: dict) -> None:
    rows = [
        ('train step, Runner (median)', f'{result["runner_step_s"] * 1e3:.1f} ms'),
        ('train step, plain loop (median)', f'{result["plain_step_s"] * 1e3:.1f} ms'),
        ('Runner overhead (median of repeats)', f'{100 * result["runner_overhead"]:+.2f} %'),
        ('Runner overhead (median steps)', f'{100 * result["runner_overhead_step"]:+.2f} %'),
        ('data time per batch (median)', f'{result["data_time_s"] * 1e3:.1f} ms'),
        ('train tokens/s', f'{result["train_tokens_per_s"]:.0f}'),
        ('inference per sample (median)', f'{result["inference_s_per_sample"] * 1e3:.2f} ms'),
        ('peak memory', f'{result["peak_memory_gb"]:.3f} GB ({result["peak_memory_source"]})'),
        ('Runner build / epoch end (once)', f'{result["runner_build_s"]:.2f} s / '
         f'{result["runner_epoch_end_s"]:.2f} s'),
    ]  # fmt: skip
    print(
        f'\n{result["config"]} on {result["device"]} ({result["torch_threads"]} threads), '
        f'batch {result["batch_size"]}, {result["iters"]} timed + {result["warmup"]} warm-up '
        f'iterations x {result["repeats"]} repeats'
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f'| {name:<{width}} | {value:>24} |')


def main() -> int:
    args = parse_args()
    setup_runtime()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, cfg, args.work_dir or tmp)
    print_table(result)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
