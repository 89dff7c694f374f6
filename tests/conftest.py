"""Shared fixtures: the tiny LISA config, built offline with random weights."""

import copy
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes.py')


@pytest.fixture(scope='session')
def tiny_cfg() -> Config:
    """The demo config (tiny random LLaVA + tiny SAM + shapes data)."""
    init_default_scope('lisakit')
    return Config.fromfile(TINY_CONFIG)


@pytest.fixture()
def tiny_model_cfg(tiny_cfg) -> dict:
    """A mutable copy of the tiny model config."""
    return copy.deepcopy(tiny_cfg.model.to_dict())


@pytest.fixture(scope='session')
def small_dataset_cfg(tiny_cfg):
    """``fn(split, num_samples)``: a few shapes samples with the config's pipeline."""

    def make(split: str = 'train', num_samples: int = 8) -> dict:
        loader = tiny_cfg.train_dataloader if split == 'train' else tiny_cfg.val_dataloader
        ds = copy.deepcopy(loader.dataset.to_dict())
        ds['num_samples'] = num_samples
        return ds

    return make
