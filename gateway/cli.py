"""The `minyi` command.

minyi run --config FILE [--workers api,sms,webhooks,dialer,asr] [--instance NAME]
minyi config check --config FILE
minyi parse TEXT [--json] | minyi parse --json -
minyi webhooks replay|dead --config FILE [--endpoint NAME]
minyi asterisk render --config FILE --out DIR [--force] | --check
minyi desk hash-pin [--stdin]         the stored form of a desk or board PIN
minyi smsc [--port 2775 ...]          the SMS center simulator (tests, demo)
minyi webhook-receiver [--port ...]   a reference webhook receiver (demo)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.config import ConfigError, load_settings
from gateway.config.cli import EXIT_CONFIG_ERROR


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="minyi run", description="Run the gateway.")
    parser.add_argument("--config", required=True, metavar="FILE")
    parser.add_argument(
        "--workers",
        help="comma-separated subset of api,sms,webhooks,dialer,asr (default: from config)",
    )
    parser.add_argument(
        "--instance",
        help="this process's name in Redis consumer groups (default: the host name); "
        "give each process on one host its own",
    )
    args = parser.parse_args(argv)
    from gateway import logs
    from gateway.service import Service, install_signal_handlers

    try:
        settings = load_settings(args.config)
        workers = tuple(w.strip() for w in args.workers.split(",")) if args.workers else None
        service = Service(settings, workers or settings.workers, instance=args.instance)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    logs.configure(settings.log.level, settings.log.format)
    for warning in service.settings.warnings:  # the checks at start add theirs
        print(f"config warning: {warning}", file=sys.stderr)

    async def main() -> int:
        remove = install_signal_handlers(service)
        try:
            return await service.run()
        finally:
            remove()

    return asyncio.run(main())


def _webhooks(argv: list[str]) -> int:
    from gateway.webhooks.cli import main as webhooks_main

    return int(webhooks_main(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `minyi` command; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "run":
        return _run(rest)
    if command == "config":
        from gateway.startup import main as config_main

        return int(config_main(rest))
    if command == "parse":
        from sms.understand.cli import main as parse_main

        return int(parse_main(rest))
    if command == "asr":
        from asr.cli import main as asr_main

        return int(asr_main(rest))
    if command == "webhooks":
        return _webhooks(rest)
    if command == "asterisk":
        from gateway.dialer.cli import main as asterisk_main

        return int(asterisk_main(rest))
    if command == "desk":
        from gateway.desk.cli import main as desk_main

        return int(desk_main(rest))
    if command == "smsc":
        try:
            from smsc.cli import main as smsc_main
        except ImportError:
            # a test and demo tool: it lives in the source tree, not in the installed product
            print(
                "minyi smsc: the SMS center simulator runs from the source tree: python -m smsc",
                file=sys.stderr,
            )
            return 2
        return int(smsc_main(rest))
    if command == "webhook-receiver":
        from gateway.webhooks.receiver import main as receiver_main

        return int(receiver_main(rest))
    print(f"minyi: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
