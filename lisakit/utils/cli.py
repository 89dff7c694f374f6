"""One error policy for every command-line tool: user errors end in one line, not a traceback.

Each tool ends with ``sys.exit(run_cli(main))``. A user error (a missing or undecodable file,
a wrong config key or value, a missing optional dependency) is printed to stderr as one line,
``<tool>: error: <message> (add --debug for the traceback)``, and the process exits with
:data:`USER_ERROR_EXIT`. ``--debug`` anywhere on the command line, or ``LISAKIT_DEBUG=1`` in
the environment, lets the exception (and its traceback) through instead.

The messages themselves come from where the error is raised (lisakit raises ``ValueError`` /
``TypeError`` / ``FileNotFoundError`` naming the file or key and the fix); this module only
decides how they end the process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator, Optional, Sequence

#: Environment variable that turns on tracebacks (``LISAKIT_DEBUG=1``).
DEBUG_ENV = 'LISAKIT_DEBUG'
#: Command-line flag that turns on tracebacks; removed from ``sys.argv`` before ``main``.
DEBUG_FLAG = '--debug'
#: Exit status for a user error (as argparse's for a bad command line).
USER_ERROR_EXIT = 2
#: Exit status after Ctrl-C (128 + SIGINT).
INTERRUPT_EXIT = 130
#: Exceptions that report bad user input: files, config keys and values, dependencies.
#: ``OSError`` covers missing / unreadable files and folders; ``SyntaxError`` a broken
#: config file; ``ImportError`` an optional dependency that is not installed.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError, SyntaxError, ImportError)
#: Values of :data:`DEBUG_ENV` that do not turn debugging on.
FALSE_VALUES = ('', '0', 'false', 'no', 'off')


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """Whether ``--debug`` is in ``argv`` (default ``sys.argv``) or ``LISAKIT_DEBUG`` is set."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ.get(DEBUG_ENV, '').strip().lower()
    return DEBUG_FLAG in argv or env not in FALSE_VALUES


def error_line(err: BaseException) -> str:
    """The message of ``err`` on one line: whitespace runs collapsed; ``KeyError``'s quotes
    dropped; the exception's class name added when the message does not explain itself."""
    if isinstance(err, KeyError) and len(err.args) == 1:
        message = str(err.args[0])
    elif isinstance(err, SyntaxError):
        message = f'{_syntax_error_file(err)}, line {err.lineno}: {err.msg}'
    elif isinstance(err, OSError) and err.filename and err.strerror:
        message = f'{err.filename}: {err.strerror}'
    else:
        message = str(err)
    message = ' '.join(message.split())
    kind = type(err).__name__
    if not message:
        return kind
    if isinstance(err, (KeyError, SyntaxError)) or message.startswith('[Errno'):
        return f'{kind}: {message}'
    return message


def _syntax_error_file(err: SyntaxError) -> str:
    """The file of a syntax error; mmengine parses configs without a file name, so then
    the one ``.py`` file on the command line (the config), if there is exactly one."""
    if err.filename and not err.filename.startswith('<'):
        return err.filename
    configs = [a for a in sys.argv[1:] if a.endswith('.py') and os.path.isfile(a)]
    return configs[0] if len(configs) == 1 else 'the config file'


def run_cli(main: Callable[[], Optional[int]], prog: Optional[str] = None) -> int:
    """Run a tool's ``main()`` under lisakit's error policy and return its exit status.

    Args:
        main: The tool's entry point (parses ``sys.argv`` itself; returns an exit status).
        prog: Name printed before ``error:`` (default: the script's file name).

    Returns:
        ``main()``'s status, :data:`USER_ERROR_EXIT` after a user error, or
        :data:`INTERRUPT_EXIT` after Ctrl-C. With ``--debug`` / ``LISAKIT_DEBUG=1`` the
        exception propagates with its traceback.
    """
    debug = debug_requested()
    if DEBUG_FLAG in sys.argv:
        sys.argv = [a for a in sys.argv if a != DEBUG_FLAG]
    prog = prog or os.path.basename(sys.argv[0] or 'lisakit')
    try:
        status = main()
    except KeyboardInterrupt:
        if debug:
            raise
        print(f'{prog}: interrupted', file=sys.stderr)
        return INTERRUPT_EXIT
    except USER_ERRORS as err:
        if debug:
            raise
        print(
            f'{prog}: error: {error_line(err)} (add {DEBUG_FLAG} for the traceback)',
            file=sys.stderr,
        )
        return USER_ERROR_EXIT
    return 0 if status is None else int(status)


def config_with_options(config: str, cfg_options: Optional[dict]):
    """``config`` (a path) with ``--cfg-options`` merged: the path itself when there are no
    options, else the loaded and edited :class:`mmengine.config.Config`.

    Raises:
        ValueError: For options on a model folder (its config is read by ``init_model``).
    """
    if not cfg_options:
        return config
    if os.path.isdir(config):
        raise ValueError(
            f'--cfg-options edits a config file, but {config} is a model folder: pass '
            f'{os.path.join(config, "lisakit_config.py")} and a checkpoint instead, or edit it.'
        )
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    return cfg


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool = True) -> Iterator:
    """An mmengine ``ProgressBar`` of ``total`` steps on stderr (stdout stays for results),
    whose line is ended when the block exits, normally or by an error, so an error message
    starts on its own line. Yields ``None`` when not ``enabled`` (e.g. on ranks > 0)."""
    if not enabled:
        yield None
        return
    from mmengine.utils import ProgressBar

    bar = ProgressBar(total, file=sys.stderr)
    try:
        yield bar
    finally:
        sys.stderr.write('\n')
        sys.stderr.flush()
