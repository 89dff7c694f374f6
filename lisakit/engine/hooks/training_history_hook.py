"""Per-epoch metrics files, ``training_history.json`` and ``training_history.png``."""

from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from typing import Optional, Sequence

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from lisakit.registry import HOOKS
from lisakit.utils.io import atomic_write, dump_json_atomic

#: Quantities tracked per epoch: (history key, train log key, val data-sample loss key).
TRACKED = (
    ('loss', 'loss', None),
    ('ce', 'loss_ce', 'loss_ce'),
    ('bce', 'loss_bce', 'loss_bce'),
    ('dice', 'loss_dice', 'loss_dice'),
    ('cIoU', 'cIoU', None),
    ('gIoU', 'gIoU', None),
)
PANELS = (
    ('loss', 'Total loss'),
    ('ce', 'CE loss'),
    ('bce', 'BCE loss'),
    ('dice', 'Dice loss'),
    ('cIoU', 'cIoU'),
    ('gIoU', 'gIoU'),
)
BYTES_PER_GB = 1024**3
KB_PER_GB = 1024**2


def peak_memory_gb() -> tuple[float, str]:
    """Peak CUDA memory allocated, or the process's peak RSS without CUDA."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / BYTES_PER_GB, 'cuda_max_allocated'
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KB_PER_GB, 'process_peak_rss'


def plot_history(history: dict, path: str) -> None:
    """Draw the 6-panel train-vs-val figure of ``history`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (key, title) in zip(axes.flat, PANELS):
        for split, style in (('train', 'o-'), ('val', 's-')):
            rows = [r for r in history[split] if r.get(key) is not None]
            ax.plot([r['epoch'] for r in rows], [r[key] for r in rows], style, label=split)
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format='png'))
    plt.close(fig)


@HOOKS.register_module()
class TrainingHistoryHook(Hook):
    """Record train and val curves and simple benchmarks in the work dir.

    Writes, after every validation: ``metrics_epoch_{N}.json`` (that epoch's train
    and val numbers), ``training_history.json`` (``train`` and ``val`` lists with
    loss, ce, bce, dice, cIoU, gIoU per epoch, plus ``benchmarks``: peak memory in
    GB and mean inference seconds per val sample) and ``training_history.png``; the same
    rows go to ``runner.visualizer`` (``history/train/<key>``, ``history/val/<key>`` and
    ``history/benchmarks/<key>`` scalars at step = epoch), so every vis backend of the
    config (``LocalVisBackend``, ``TensorboardVisBackend``, ``WandbVisBackend``,
    ``MLflowVisBackend``) receives them.
    Train values are means of the per-iteration values of the epoch; val losses are
    means over samples of the teacher-forced losses. On resume, the existing history
    is kept up to the resumed epoch.

    Args:
        out_dir: Folder for the files (default: the runner's work dir).
        plot: Whether to draw ``training_history.png``.
        to_visualizer: Whether to send the rows to ``runner.visualizer``'s backends.
    """

    priority = 'LOW'

    def __init__(
        self, out_dir: Optional[str] = None, plot: bool = True, to_visualizer: bool = True
    ) -> None:
        self.out_dir = out_dir
        self.plot = plot
        self.to_visualizer = to_visualizer
        self.history: dict = dict(train=[], val=[], benchmarks={})
        self._sums: dict = defaultdict(float)
        self._counts: dict = defaultdict(int)
        self._val_time = 0.0
        self._val_samples = 0
        self._tic = 0.0

    def _path(self, runner, name: str) -> str:
        return os.path.join(self.out_dir or runner.work_dir, name)

    def before_train(self, runner) -> None:
        """Reload an existing history when resuming."""
        path = self._path(runner, 'training_history.json')
        if runner.epoch > 0 and os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                old = json.load(f)
            for split in ('train', 'val'):
                self.history[split] = [r for r in old.get(split, []) if r['epoch'] <= runner.epoch]

    def _reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def _add(self, key: str, value) -> None:
        self._sums[key] += float(value)
        self._counts[key] += 1

    def _means(self) -> dict:
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def before_train_epoch(self, runner) -> None:
        self._reset()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for _, log_key, _ in TRACKED:
            if outputs and log_key in outputs:
                value = outputs[log_key]
                self._add(log_key, value.detach() if torch.is_tensor(value) else value)

    def after_train_epoch(self, runner) -> None:
        means = self._means()
        row = {'epoch': runner.epoch + 1}
        row.update({name: means.get(log_key) for name, log_key, _ in TRACKED})
        row['lr'] = runner.optim_wrapper.get_lr()['lr'][0]
        self.history['train'].append(row)
        self._send(runner, 'train', row, row['epoch'])
        self._save(runner)

    def before_val_epoch(self, runner) -> None:
        self._reset()
        self._val_time, self._val_samples = 0.0, 0

    def before_val_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._tic = time.perf_counter()

    def after_val_iter(
        self, runner, batch_idx: int, data_batch=None, outputs: Optional[Sequence] = None
    ) -> None:
        self._val_time += time.perf_counter() - self._tic
        for sample in outputs or []:
            self._val_samples += 1
            losses = sample.get('losses') if hasattr(sample, 'get') else None
            for key, value in (losses or {}).items():
                self._add(key, value)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        means = self._means()
        row = {'epoch': runner.epoch}
        for name, _, val_key in TRACKED:
            row[name] = means.get(val_key) if val_key else None
        if row['ce'] is not None:
            row['loss'] = sum(row[k] for k in ('ce', 'bce', 'dice') if row[k] is not None)
        row.update({k: float(v) for k, v in (metrics or {}).items()})
        self.history['val'] = [r for r in self.history['val'] if r['epoch'] != row['epoch']]
        self.history['val'].append(row)
        memory, source = peak_memory_gb()
        self.history['benchmarks'] = dict(
            peak_memory_gb=round(memory, 4),
            peak_memory_source=source,
            avg_inference_time_s=self._val_time / max(self._val_samples, 1),
        )
        self._send(runner, 'val', row, row['epoch'])
        self._send(runner, 'benchmarks', self.history['benchmarks'], row['epoch'])
        train = [r for r in self.history['train'] if r['epoch'] == row['epoch']]
        if is_main_process():
            dump_json_atomic(
                dict(epoch=row['epoch'], train=train[-1] if train else None, val=row),
                self._path(runner, f'metrics_epoch_{row["epoch"]}.json'),
            )
        self._save(runner)

    def _send(self, runner, split: str, row: dict, step: int) -> None:
        """Numbers of ``row`` to the visualizer's backends as ``history/{split}/{key}``."""
        visualizer = getattr(runner, 'visualizer', None)
        if not self.to_visualizer or visualizer is None:
            return
        scalars = {
            f'history/{split}/{key}': float(value)
            for key, value in row.items()
            if key != 'epoch' and isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if scalars:
            visualizer.add_scalars(scalars, step=step)  # rank 0 only (master_only)

    def _save(self, runner) -> None:
        if not is_main_process():
            return
        dump_json_atomic(self.history, self._path(runner, 'training_history.json'))
        if self.plot:
            plot_history(self.history, self._path(runner, 'training_history.png'))
