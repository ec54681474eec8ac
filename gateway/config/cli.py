"""What every command that reads the config file shares: its argument parsing and
its exit code for a wrong config (2, as argparse uses for a wrong command line, so
scripts and deploy tools can stop on it).

`minyi config check` itself runs at the top floor (gateway/startup.py): it runs the
checks that need the domains' code.
"""

from __future__ import annotations

import argparse
from typing import Final

EXIT_OK: Final = 0
EXIT_CONFIG_ERROR: Final = 2


def parse_command(
    argv: list[str], command: str, parser: argparse.ArgumentParser
) -> argparse.Namespace | int:
    """The parsed arguments of `minyi <command> ...` (``argv`` after the command; a
    leading command name is also accepted), or the exit code when argparse already
    answered (--help, or a wrong command line it explained)."""
    if argv[:1] == [command]:
        argv = argv[1:]
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_CONFIG_ERROR
