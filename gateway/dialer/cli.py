"""`minyi asterisk render`: write the Asterisk configuration the gateway relies on.

    minyi asterisk render --config FILE --out DIR [--force]
    minyi asterisk render --config FILE --check

Renders ``pjsip.conf``, ``queues.conf``, ``extensions.conf`` and ``manager.conf`` from
the config file's ``[dialer]`` section and its ``[dialer.asterisk]`` table (see
``dialplans/README.md``). The files hold the AMI secret and the SIP passwords, so they
are written with mode 0640, each through a temporary file renamed into place. A file
that exists with other contents is left alone unless ``--force`` is given (someone may
have edited it by hand); then nothing is written. ``--check`` renders and writes
nothing. Exit codes: 0 done, 1 refused to overwrite or could not write, 2 a wrong
config or command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Final, TextIO

from gateway.config import ConfigError, load_settings
from gateway.config.cli import parse_command
from gateway.dialer.asterisk import AsteriskConfError, check_config, render

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_CONFIG_ERROR: Final = 2
FILE_MODE: Final = 0o640  # secrets inside: readable by Asterisk's group, not by all


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minyi asterisk", description="Asterisk config tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rend = commands.add_parser(
        "render", help="render pjsip.conf, queues.conf, extensions.conf, manager.conf"
    )
    rend.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    where = rend.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="directory to write the files into")
    where.add_argument("--check", action="store_true", help="only check that they render")
    rend.add_argument("--force", action="store_true", help="overwrite files whose contents differ")
    return parser


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at mode 0640, never leaving a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_files(
    files: dict[str, str], out: Path, *, force: bool = False, stdout: TextIO | None = None
) -> int:
    """Write ``{filename: text}`` into ``out``; prints one line per file, returns the exit
    code. Checks every file before writing any, so a refusal changes nothing."""
    stdout = stdout or sys.stdout
    out.mkdir(parents=True, exist_ok=True)
    refused = []
    for name, text in files.items():
        path = out / name
        if path.exists() and path.read_text(encoding="utf-8") != text and not force:
            refused.append(path)
    if refused:
        for path in refused:
            print(
                f"asterisk render: {path} differs; not overwritten (--force replaces it)",
                file=sys.stderr,
            )
        return EXIT_REFUSED
    for name, text in files.items():
        path = out / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            os.chmod(path, FILE_MODE)
            print(f"unchanged {path}", file=stdout)
        else:
            _write(path, text)
            print(f"wrote {path}", file=stdout)
    return EXIT_OK


def main(argv: list[str]) -> int:
    """Run `minyi asterisk ...` with ``argv`` after "asterisk" (a leading "asterisk" is
    also accepted); return the exit code."""
    args = parse_command(argv, "asterisk", _parser())
    if isinstance(args, int):
        return args
    try:
        settings = load_settings(args.config)
        if settings.dialer is None or settings.dialer.asterisk is None:
            raise ConfigError("dialer.asterisk", "is required to render the Asterisk config")
        check_config(settings.dialer.asterisk)  # names the setting render would refuse
        files = render(settings.dialer.asterisk)
    except (ConfigError, AsteriskConfError) as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except OSError as e:  # the templates (dialplans/) are not there
        print(f"asterisk render: cannot read a template: {e}", file=sys.stderr)
        return EXIT_REFUSED
    for warning in settings.warnings:
        print(f"config warning: {warning}", file=sys.stderr)
    if args.check:
        asterisk = settings.dialer.asterisk
        print(
            f"asterisk config OK: {', '.join(files)} "
            f"({len(asterisk.agents)} agents, {len(asterisk.units)} unit queues)"
        )
        return EXIT_OK
    try:
        return write_files(files, Path(args.out), force=args.force)
    except OSError as e:
        print(f"asterisk render: cannot write to {args.out}: {e}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
