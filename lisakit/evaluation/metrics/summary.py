"""Pieces the segmentation metrics share: sample names, generate-mode counts, per-group
break-downs and the closing log line."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Sequence, TypeVar

from mmengine.logging import print_log

Item = TypeVar('Item')


def sample_name(sample: dict) -> Any:
    """How an error names a data sample: its image path, else its index."""
    return sample.get('img_path') or sample.get('sample_idx')


def no_seg_metrics(results: Sequence[dict]) -> dict[str, float]:
    """``no_seg_answers`` (answers without any ``<SEG>``) in generate mode, else nothing."""
    generated = [r['num_generated_seg'] for r in results if r['num_generated_seg'] is not None]
    if not generated:
        return {}
    return {'no_seg_answers': float(sum(n == 0 for n in generated))}


def group_metrics(
    items: Sequence[Item],
    group_of: Callable[[Item], Any],
    summarize: Callable[[list[Item]], dict[str, float]],
) -> dict[str, float]:
    """``{group}/{key}`` scores of the items of each group, groups sorted by name."""
    groups = defaultdict(list)
    for item in items:
        groups[group_of(item)].append(item)
    return {
        f'{name}/{k}': v
        for name, group in sorted(groups.items(), key=lambda kv: str(kv[0]))
        for k, v in summarize(group).items()
    }


def log_metrics(title: str, metrics: dict[str, float]) -> None:
    """Log ``{title}: key=value, ...`` to the current logger."""
    print_log(
        f'{title}: ' + ', '.join(f'{k}={v:.4f}' for k, v in metrics.items()), logger='current'
    )
