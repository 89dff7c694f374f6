"""Walk a config's dataset through its pipeline and list every bad sample.

``python tools/misc/check_dataset.py CONFIG [--split train|val|test]`` prints a table of the
samples that fail (file and reason) and exits with 1 if there is any, 0 otherwise.
"""

import argparse
import copy
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.registry import DATASETS  # noqa: E402

LOADERS = dict(train='train_dataloader', val='val_dataloader', test='test_dataloader')


def check(dataset) -> list[tuple[str, str]]:
    """(file, reason) of annotations skipped while loading and samples failing the pipeline."""
    bad = list(getattr(dataset, 'skipped', []))
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        try:
            dataset.pipeline(copy.deepcopy(info))
        except Exception as err:  # report every failure, whatever its kind
            name = info.get('img_path') or f'sample {idx}'
            bad.append((str(name), f'{type(err).__name__}: {err}'))
    return bad


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
    if ds_cfg.get('type') == 'ReasonSegDataset':
        ds_cfg['on_error'] = 'skip'  # collect load-time errors instead of stopping
    dataset = DATASETS.build(ds_cfg)
    bad = check(dataset)
    print(f'{len(dataset)} samples checked, {len(bad)} bad')
    for name, reason in bad:
        print(f'{name}\t{reason}')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
