"""lisakit.utils.cli: user errors end in one line and status 2; --debug lets them through."""

import sys

import pytest

from lisakit.utils import cli


def _raise(err):
    def main():
        raise err

    return main


@pytest.fixture
def argv(monkeypatch):
    def set_argv(*args):
        monkeypatch.setattr(sys, 'argv', ['tool.py', *args])

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    return set_argv


@pytest.mark.parametrize(
    'err, line',
    [
        (FileNotFoundError('Image x.png not found; check data_root.'), 'Image x.png not found'),
        (
            ValueError('model.neck.type: expected\n  one of [a, b].'),
            'model.neck.type: expected one',
        ),
        (KeyError('model.backbone.foo'), 'KeyError: model.backbone.foo'),
        (FileNotFoundError(2, 'No such file or directory', 'a.py'), 'a.py: No such file or'),
        (SyntaxError("'(' was never closed", ('<unknown>', 1, 1, 'a = (')), "line 1: '(' was"),
        (ImportError('pip install deepspeed'), 'pip install deepspeed'),
    ],
)
def test_user_errors_print_one_line_and_exit_2(argv, capsys, err, line):
    argv('cfg.py')
    assert cli.run_cli(_raise(err)) == cli.USER_ERROR_EXIT
    captured = capsys.readouterr()
    assert captured.out == ''
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('tool.py: error: ')
    assert line in lines[0] and lines[0].endswith('(add --debug for the traceback)')


def test_debug_flag_or_env_shows_the_traceback(argv, monkeypatch):
    seen = []
    argv('cfg.py', '--debug')
    with pytest.raises(ValueError):
        cli.run_cli(lambda: seen.append(list(sys.argv)) or _raise(ValueError('bad'))())
    assert seen == [['tool.py', 'cfg.py']]  # the flag is not passed on to argparse
    argv('cfg.py')
    monkeypatch.setenv(cli.DEBUG_ENV, '1')
    with pytest.raises(KeyError):
        cli.run_cli(_raise(KeyError('k')))
    monkeypatch.setenv(cli.DEBUG_ENV, '0')
    assert cli.run_cli(_raise(KeyError('k'))) == cli.USER_ERROR_EXIT


def test_bugs_keep_their_traceback_and_statuses_pass_through(argv):
    argv()
    with pytest.raises(RuntimeError):
        cli.run_cli(_raise(RuntimeError('a bug')))
    assert cli.run_cli(lambda: 1) == 1
    assert cli.run_cli(lambda: None) == 0


def test_config_with_options(tmp_path):
    cfg_file = tmp_path / 'c.py'
    cfg_file.write_text('a = dict(b=1)\n')
    assert cli.config_with_options(str(cfg_file), None) == str(cfg_file)
    assert cli.config_with_options(str(cfg_file), {'a.b': 2}).a.b == 2
    with pytest.raises(ValueError, match='model folder'):
        cli.config_with_options(str(tmp_path), {'a.b': 2})
