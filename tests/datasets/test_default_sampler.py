"""lisakit's DefaultSampler: mmengine's order without a skip; exact continuation with one."""

import pytest
from mmengine.dataset import DefaultSampler as MMEngineDefaultSampler

from lisakit.datasets.samplers import DefaultSampler


def make(cls, n, rank, world_size, shuffle=True, round_up=True, epoch=3):
    sampler = cls(list(range(n)), shuffle=shuffle, seed=7, round_up=round_up)
    sampler.rank, sampler.world_size = rank, world_size  # as under DDP
    if round_up:
        sampler.num_samples = -(-n // world_size)
        sampler.total_size = sampler.num_samples * world_size
    else:
        sampler.num_samples = -(-(n - rank) // world_size)
        sampler.total_size = n
    sampler.set_epoch(epoch)
    return sampler


@pytest.mark.parametrize('n,world_size', [(10, 1), (11, 2), (13, 4)])
@pytest.mark.parametrize('shuffle,round_up', [(True, True), (False, True), (True, False)])
def test_without_skip_it_is_mmengines_sampler(n, world_size, shuffle, round_up):
    for rank in range(world_size):
        ours = list(make(DefaultSampler, n, rank, world_size, shuffle, round_up))
        theirs = list(make(MMEngineDefaultSampler, n, rank, world_size, shuffle, round_up))
        assert ours == theirs


def test_skip_continues_exactly_on_the_same_world_size():
    n, world_size, batch = 23, 2, 3
    full = [list(make(DefaultSampler, n, r, world_size)) for r in range(world_size)]
    done = 2  # batches per rank already trained
    for rank in range(world_size):
        sampler = make(DefaultSampler, n, rank, world_size)
        sampler.skip(done * batch * world_size)
        assert list(sampler) == full[rank][done * batch :]
        assert list(sampler) == full[rank]  # the skip applies once


def test_skip_on_another_world_size_covers_the_rest_of_the_epoch_once():
    n = 26  # 18 left after the skip: 6 per rank, no padding
    order = make(DefaultSampler, n, 0, 1).epoch_order()
    consumed = 8  # by 2 ranks x 2 batches of 2
    rest = []
    for rank in range(3):
        sampler = make(DefaultSampler, n, rank, 3)
        sampler.skip(consumed)
        rest += list(sampler)
    assert sorted(rest) == sorted(order[consumed:])
    with pytest.raises(ValueError, match='>= 0'):
        sampler.skip(-1)
