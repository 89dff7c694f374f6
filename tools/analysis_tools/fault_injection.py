"""Kill training at seeded random points, resume, and compare with a run that never died.

    python tools/analysis_tools/fault_injection.py CONFIG --work-dir DIR [--kills 5]
        [--seed 0] [--iter-interval 4] [--cfg-options KEY=VALUE ...]

1. Trains CONFIG uninterrupted into ``DIR/reference``.
2. Trains it again into ``DIR/faulty``, SIGKILLing the whole process group (dataloader
   workers included) ``--kills`` times: at seeded random iterations (after a seeded
   random delay of up to ``--max-delay`` s, so kills land anywhere in a step, its
   logging or its checkpoint write), and at least once inside a checkpoint write
   (``LISAKIT_FAULT_KILL_IN_SAVE``: the writer kills its group halfway through the
   file). Every restart is ``tools/train.py CONFIG --resume``, as a user would type it.
3. Compares the final checkpoints (every tensor, bit for bit) and the per-epoch
   validation metrics of ``training_history.json``.

Exit status 0 when both match exactly, 1 otherwise. The run is made for the tiny CPU
demo; ``--iter-interval`` adds checkpoints inside epochs (kills then lose at most that
many iterations), and the logger is set to log every iteration (kill points are read
from the log).
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import random
import re
import signal
import subprocess
import sys
import time
from typing import Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from lisakit.utils.io import KILL_IN_SAVE_ENV  # noqa: E402

#: Log lines that give the training progress (epoch-based and iteration-based loops).
EPOCH_LINE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')
ITER_LINE = re.compile(r'Iter\(train\)\s+\[\s*(\d+)/(\d+)\]')
#: Keys of a history row that are timings, not results (they differ between runs).
TIMING_KEYS = ('time', 'data_time')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--kills', type=int, default=5, help='SIGKILLs of the faulty run')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kill points')
    parser.add_argument(
        '--iter-interval', type=int, default=4, help='checkpoint every N iterations (-1: off)'
    )
    parser.add_argument('--max-delay', type=float, default=0.5, help='max extra delay (s)')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to train.py')
    return parser.parse_args(argv)


def progress(line: str) -> Optional[tuple[int, int]]:
    """(global iteration, iterations in total or per epoch) from a training log line."""
    match = EPOCH_LINE.search(line)
    if match:
        epoch, i, n = map(int, match.groups())
        return (epoch - 1) * n + i, n
    match = ITER_LINE.search(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def train(args, work_dir: str, resume: bool, kill_at=None, kill_in_save=None, log=None) -> dict:
    """One ``tools/train.py`` process in its own process group; kill it as asked.

    Args:
        kill_at: SIGKILL the group once the log shows this global iteration (plus a
            random delay), or None.
        kill_in_save: Set ``LISAKIT_FAULT_KILL_IN_SAVE`` to this (the N-th checkpoint
            file this process writes kills it halfway), or None.

    Returns:
        ``returncode``, ``last_iter`` seen in the log, ``killed`` ('iteration', 'save'
        or None) and the ``delay`` used.
    """
    opts = list(args.cfg_options) + ['default_hooks.logger.interval=1']
    if args.iter_interval > 0:
        opts.append(f'default_hooks.checkpoint.iter_interval={args.iter_interval}')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), args.config]
    cmd += ['--work-dir', work_dir] + (['--resume'] if resume else []) + ['--cfg-options', *opts]
    env = dict(os.environ)
    if kill_in_save is not None:
        env[KILL_IN_SAVE_ENV] = str(kill_in_save)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=REPO, start_new_session=True,
    )  # fmt: skip
    last, killed, delay = 0, None, 0.0
    for line in proc.stdout:
        if log is not None:
            log.write(line)
        step = progress(line)
        if step is None:
            continue
        last = step[0]
        if kill_at is not None and last >= kill_at and killed is None:
            delay = args.rng.uniform(0, args.max_delay)
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            killed = 'iteration'
    code = proc.wait()
    if code == -signal.SIGKILL and killed is None:
        killed = 'save'
    return dict(returncode=code, last_iter=last, killed=killed, delay=round(delay, 3))


def final_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as f:
        return f.read().strip()


def compare(reference: str, faulty: str) -> dict:
    """Tensors of the final checkpoints and per-epoch val rows of the two runs."""
    a = torch.load(final_checkpoint(reference), map_location='cpu', weights_only=False)
    b = torch.load(final_checkpoint(faulty), map_location='cpu', weights_only=False)
    sa, sb = a['state_dict'], b['state_dict']
    differ = sorted(k for k in sa if k not in sb or not torch.equal(sa[k], sb[k]))
    differ += sorted(set(sb) - set(sa))
    rows = []
    for run in (reference, faulty):
        with open(osp.join(run, 'training_history.json'), encoding='utf-8') as f:
            val = json.load(f)['val']
        rows.append([{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in val])
    return dict(
        tensors=len(sa),
        tensors_differing=differ,
        weights_identical=not differ,
        val_epochs=[r['epoch'] for r in rows[1]],
        val_identical=rows[0] == rows[1],
        val_reference=rows[0],
        val_faulty=rows[1],
        meta=(a['meta'].get('epoch'), a['meta'].get('iter'), b['meta'].get('iter')),
    )


def kill_plan(args, total: int) -> list:
    """Seeded plan: ``kills`` entries, each a target iteration or 'save' (one at least)."""
    targets = sorted(args.rng.sample(range(1, total), min(args.kills, total - 1)))
    plan: list = list(targets)
    plan[args.rng.randrange(len(plan))] = 'save'
    return plan


def main(argv=None) -> int:
    args = parse_args(argv)
    args.rng = random.Random(args.seed)
    reference, faulty = osp.join(args.work_dir, 'reference'), osp.join(args.work_dir, 'faulty')
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'harness.log'), 'w', encoding='utf-8') as log:
        start = time.time()
        ref = train(args, reference, resume=False, log=log)
        if ref['returncode'] != 0:
            print(f'reference run failed (exit {ref["returncode"]}); see harness.log')
            return 1
        total = ref['last_iter']
        print(f'reference: {total} iterations uninterrupted ({time.time() - start:.0f} s)')
        attempts = []
        for n, target in enumerate(kill_plan(args, total)):
            save = target == 'save'
            out = train(
                args, faulty, resume=n > 0, kill_at=None if save else target,
                kill_in_save=1 if save else None, log=log,
            )  # fmt: skip
            tmp = [f for f in os.listdir(faulty) if f.startswith('.tmp-')]
            where = 'inside a checkpoint write' if save else f'at iteration >= {target}'
            print(
                f'kill {n + 1}: {where}: killed={out["killed"]}, exit {out["returncode"]}, '
                f'last logged iteration {out["last_iter"]}, delay {out["delay"]} s, '
                f'half-written files {tmp}'
            )
            attempts.append(dict(plan=target, **out, tmp_files=tmp))
        final = train(args, faulty, resume=True, log=log)
        print(f'final resume: exit {final["returncode"]}, last iteration {final["last_iter"]}')
    if final['returncode'] != 0:
        return 1
    result = compare(reference, faulty)
    result['attempts'] = attempts
    with open(osp.join(args.work_dir, 'fault_injection.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    print(
        f'final weights: {result["tensors"]} tensors, bit-identical: '
        f'{result["weights_identical"]} (differing: {result["tensors_differing"][:5]})'
    )
    print(f'per-epoch val metrics identical: {result["val_identical"]}')
    for row in result['val_faulty']:
        print('  ' + json.dumps({k: row[k] for k in ('epoch', 'cIoU', 'gIoU') if k in row}))
    killed = sum(a['killed'] is not None for a in attempts)
    print(f'{killed} kills ({sum(a["killed"] == "save" for a in attempts)} inside a save)')
    return 0 if result['weights_identical'] and result['val_identical'] else 1


if __name__ == '__main__':
    sys.exit(main())
