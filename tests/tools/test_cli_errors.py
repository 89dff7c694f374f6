"""Bad user input to the tools ends in one line naming the file or key, exit status 2.

The tools run in this process (``runpy``, as ``python tools/...`` would run them, without an
interpreter start-up each); the case that builds a Runner runs as a real process (a Runner
registers process-wide loggers and visualizers), and shows that stderr holds no traceback at
all (in-process, loggers of earlier tests may write to pytest's closed capture streams).
``tests/utils/test_cli.py`` covers the policy itself.
"""

import os.path as osp
import runpy
import sys

import pytest
from tool_runner import DEMO, REPO, output, run_tool

HINT = '(add --debug for the traceback)'


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bad')
    (folder / 'broken.py').write_text('model = dict(\n')
    (folder / 'not_an_image.png').write_text('not an image')
    (folder / 'empty.pth').write_bytes(b'')
    (folder / 'junk.pth').write_bytes(b'junk' * 16)
    return folder


def run_in_process(monkeypatch, tool, *args):
    """``python tools/<tool> ARGS`` in this process; returns the exit status."""
    monkeypatch.setattr(sys, 'argv', [tool.rsplit('/', 1)[-1], *args])
    monkeypatch.delenv('LISAKIT_DEBUG', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(osp.join(REPO, 'tools', tool), run_name='__main__')
    return exit_info.value.code


@pytest.mark.parametrize(
    'tool, args, expected',
    [
        ('train.py', ['{bad}/missing.py'], '{bad}/missing.py: No such file or directory'),
        ('misc/check_dataset.py', ['{bad}/broken.py'], "{bad}/broken.py, line 1: '(' was never"),
        (
            'infer.py',
            [DEMO, '-', '{bad}/not_an_image.png', 'the red shape', '--out', '{bad}/o'],
            "Image '{bad}/not_an_image.png' cannot be decoded",
        ),
        ('infer.py', [DEMO, '-', '{bad}/missing.png', 'q'], 'Image {bad}/missing.png does not'),
        (
            'model_converters/export.py',
            [DEMO, '{bad}/missing.pth', '{bad}/export'],
            '{bad}/missing.pth',
        ),
        ('infer.py', [DEMO, '{bad}/empty.pth', '{bad}/not_an_image.png', 'q'], '{bad}/empty.pth'),
        (
            'model_converters/export.py',
            [DEMO, '{bad}/junk.pth', '{bad}/export'],
            "'{bad}/junk.pth' is not a PyTorch checkpoint",
        ),
        ('misc/print_config.py', [DEMO, '--save-path', '{bad}/x.txt'], 'use a name ending in'),
    ],
    ids=[
        'train-missing-config',
        'check-broken-config',
        'infer-not-image',
        'infer-missing-image',
        'export-missing-checkpoint',
        'infer-empty-checkpoint',
        'export-junk-checkpoint',
        'print-config-bad-suffix',
    ],
)
def test_user_error_is_one_line(monkeypatch, capsys, bad_files, tool, args, expected):
    status = run_in_process(monkeypatch, tool, *[a.format(bad=bad_files) for a in args])
    err = capsys.readouterr().err
    assert status == 2, err
    last = err.strip().splitlines()[-1]
    name = tool.rsplit('/', 1)[-1]
    assert last.startswith(f'{name}: error: ') and last.endswith(HINT), last
    assert expected.format(bad=bad_files) in last, last


def test_a_real_process_prints_no_traceback(bad_files):
    options = ['--cfg-options', 'model.neck.no_such_key=1']
    proc = run_tool('train.py', DEMO, '--work-dir', str(bad_files / 'wd'), *options)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, output(proc)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error: ') and last.endswith(HINT), last
    assert "unexpected keyword argument 'no_such_key'" in last, last


def test_debug_flag_lets_the_error_through(monkeypatch, bad_files):
    with pytest.raises(FileNotFoundError, match='missing.py'):
        run_in_process(monkeypatch, 'train.py', str(bad_files / 'missing.py'), '--debug')
