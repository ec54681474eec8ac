"""`minyi config check --config FILE`: check a config file without starting anything.

Prints "config OK" and every setting as JSON with secrets replaced by "***", or the
one-line error naming the wrong setting; exits 2 on a wrong config (as argparse does
for a wrong command line), so scripts and deploy tools can stop on it.
"""

from __future__ import annotations

import argparse
import json
import sys

from gateway.config.reader import ConfigError, load_settings, redacted

EXIT_OK = 0
EXIT_CONFIG_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minyi config", description="Config file tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="check a config file and print the settings it gives (secrets hidden)"
    )
    check.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    return parser


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


def main(argv: list[str]) -> int:
    """Run `minyi config ...`; return the exit code."""
    args = parse_command(argv, "config", _parser())
    if isinstance(args, int):
        return args
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for warning in settings.warnings:
        print(f"config warning: {warning}", file=sys.stderr)
    print("config OK")
    print(json.dumps(redacted(settings), ensure_ascii=False, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
