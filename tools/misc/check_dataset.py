"""Walk a config's dataset through its pipeline and list every bad sample.

``python tools/misc/check_dataset.py CONFIG [--split train|val|test]`` prints a table of the
samples that fail (source dataset, file and reason), with a progress bar on stderr, and exits
with 1 if there is any, 0 otherwise. A mix (``MixedDataset``, or any dataset holding
``datasets`` and no pipeline) is walked source by source, nested mixes included; every
source sample is checked once.
For data with several or no targets per query (gRefCOCO, the multi-target shapes, JSON
lines with ``no_target`` turns) it also prints how many samples have no target, one, or
several (from the samples' ``no_target`` / ``num_targets``).
"""

import argparse
import collections
import copy
import inspect
import os.path as osp
import sys
from typing import Iterator, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.registry import DATASETS  # noqa: E402
from lisakit.utils.cli import progress_bar, run_cli  # noqa: E402

LOADERS = dict(train='train_dataloader', val='val_dataloader', test='test_dataloader')


def target_kind(info: dict):
    """``'no target'``, ``'1 target'`` or ``'2+ targets'`` of a sample that says, else None."""
    if info.get('no_target'):
        return 'no target'
    num = info.get('num_targets')
    return None if num is None else ('1 target' if num == 1 else '2+ targets')


def check(dataset, kinds=None, bar: Optional[ProgressBar] = None) -> list[tuple[str, str]]:
    """(file, reason) of annotations skipped while loading and samples failing the
    pipeline; counts each read sample's :func:`target_kind` into ``kinds`` if given;
    ``bar`` advances once per sample."""
    bad = list(getattr(dataset, 'skipped', []))
    pipeline = getattr(dataset, 'pipeline', None)
    for idx in range(len(dataset)):
        info = {}
        try:
            info = dataset.get_data_info(idx)  # may read files (masks decoded on access)
            if kinds is not None and target_kind(info):
                kinds[target_kind(info)] += 1
            if pipeline is not None:
                pipeline(copy.deepcopy(info))
        except Exception as err:  # report every failure, whatever its kind
            name = info.get('ann_location') or info.get('img_path') or f'sample {idx}'
            bad.append((str(name), f'{type(err).__name__}: {err}'))
        if bar is not None:
            bar.update()
    return bad


def is_mix(dataset) -> bool:
    """Whether ``dataset`` only draws from the datasets it holds (``MixedDataset``)."""
    return isinstance(getattr(dataset, 'datasets', None), list) and not hasattr(dataset, 'pipeline')


def sources(dataset, path: str = '') -> Iterator[tuple[str, object]]:
    """``(name, dataset)`` of every dataset that holds samples, inside mixes too; the name
    is the class and, inside a mix, the position (``RefCOCODataset (datasets[1][0])``)."""
    if is_mix(dataset):
        for i, sub in enumerate(dataset.datasets):
            yield from sources(sub, f'{path}[{i}]')
    else:
        where = f' (datasets{path})' if path else ''
        yield f'{type(dataset).__name__}{where}', dataset


def skip_on_load(ds_cfg: dict) -> None:
    """Set ``on_error='skip'`` on every dataset config that takes it (mixes' entries
    too), so load-time errors are collected instead of stopping the walk."""
    for sub in ds_cfg.get('datasets') or []:
        if isinstance(sub, dict):
            skip_on_load(sub)
    ds_type = ds_cfg.get('type')
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    if ds_cls is not None and 'on_error' in inspect.signature(ds_cls).parameters:
        ds_cfg['on_error'] = 'skip'


def main() -> int:
    parser = argparse.ArgumentParser(description='List the bad samples of a dataset')
    parser.add_argument('config')
    parser.add_argument('--split', choices=sorted(LOADERS), default='train')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    ds_cfg = copy.deepcopy(cfg[LOADERS[args.split]].dataset)
    skip_on_load(ds_cfg)
    walked = list(sources(DATASETS.build(ds_cfg)))
    kinds = collections.Counter()
    total = sum(len(ds) for _, ds in walked)
    with progress_bar(total) as bar:  # on stderr: stdout keeps the table alone
        rows = [(name, *b) for name, ds in walked for b in check(ds, kinds, bar)]
    in_sources = f' ({len(walked)} source datasets)' if len(walked) > 1 else ''
    print(f'{total} samples checked, {len(rows)} bad{in_sources}')
    if kinds:
        print('targets per sample: ' + ', '.join(f'{k} {v}' for k, v in sorted(kinds.items())))
    if rows:
        print('source\tfile\treason')
    for row in rows:
        print('\t'.join(row))
    return 1 if rows else 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
