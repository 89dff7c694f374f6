"""Bad user input to the tools ends in one line naming the file or key, exit status 2."""

import pytest
from tool_runner import DEMO, output, run_tool

HINT = '(add --debug for the traceback)'


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bad')
    (folder / 'broken.py').write_text('model = dict(\n')
    (folder / 'not_an_image.png').write_text('not an image')
    return folder


@pytest.mark.parametrize(
    'tool, args, expected',
    [
        ('train.py', ['{bad}/missing.py'], '{bad}/missing.py: No such file or directory'),
        ('misc/check_dataset.py', ['{bad}/broken.py'], "{bad}/broken.py, line 1: '(' was never"),
        (
            'train.py',
            [DEMO, '--work-dir', '{bad}/wd', '--cfg-options', 'model.neck.no_such_key=1'],
            "unexpected keyword argument 'no_such_key'",
        ),
        (
            'infer.py',
            [DEMO, '-', '{bad}/not_an_image.png', 'the red shape', '--out', '{bad}/o'],
            "Image '{bad}/not_an_image.png' cannot be decoded",
        ),
        (
            'model_converters/export.py',
            [DEMO, '{bad}/missing.pth', '{bad}/export'],
            '{bad}/missing.pth',
        ),
    ],
    ids=[
        'train-missing-config',
        'check-broken-config',
        'train-bad-key',
        'infer-not-image',
        'export-missing-checkpoint',
    ],
)
def test_user_error_is_one_line(bad_files, tool, args, expected):
    proc = run_tool(tool, *[a.format(bad=bad_files) for a in args])
    assert proc.returncode == 2, output(proc)
    assert 'Traceback' not in proc.stderr, output(proc)
    last = proc.stderr.strip().splitlines()[-1]
    name = tool.rsplit('/', 1)[-1]
    assert last.startswith(f'{name}: error: ') and last.endswith(HINT), last
    assert expected.format(bad=bad_files) in last, last


def test_debug_flag_shows_the_traceback(bad_files):
    proc = run_tool('train.py', str(bad_files / 'missing.py'), '--debug')
    assert proc.returncode == 1 and 'Traceback' in proc.stderr, output(proc)
