"""`minyi webhooks ...`: look at and re-send dead letters of the webhook feed.

    minyi webhooks dead   --config FILE [--endpoint NAME] [--limit N | --all] [--json]
    minyi webhooks replay --config FILE [--endpoint NAME] [--since ID] [--limit N]

A dead letter is an event that failed for the endpoint's max age (3 days by default).
``replay`` puts dead letters back into their surveys' queues: a running webhook worker
(any process) re-sends them within a poll interval, in seq order per survey, with a
fresh retry clock. ``--since`` is a dead-letter id as ``dead`` prints it (inclusive).
``dead`` never prints payloads (they may hold citizens' data); it says how many dead
letters there are and how many surveys wait behind them, and shows the oldest
``--limit`` (100) of them, or ``--all``. A survey whose event is dead-lettered is
parked: its later events wait until the replay, so that the receiver gets each
survey's events in order.

The main ``minyi`` CLI calls ``main(argv)`` (settings from ``--config``); the service
or tests may pass ``endpoints`` and ``redis_url`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

import redis.asyncio as aioredis

from gateway.config import ConfigError, RedisSettings, WebhookEndpoint, load_settings
from gateway.store import connection
from gateway.webhooks.dead import count_dead
from gateway.webhooks.worker import list_dead, replay

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _names(endpoints: Sequence[WebhookEndpoint | str], only: str | None) -> list[str]:
    names = [e if isinstance(e, str) else e.name for e in endpoints]
    if only is None:
        return names
    if only not in names:
        raise LookupError(
            f"unknown webhook endpoint {only!r} (configured: {', '.join(names) or 'none'})"
        )
    return [only]


async def replay_command(
    redis_url: str,
    endpoints: Sequence[WebhookEndpoint | str],
    *,
    endpoint: str | None = None,
    since: str | None = None,
    limit: int | None = None,
    out: TextIO = sys.stdout,
    options: RedisSettings | None = None,
) -> int:
    """Replay the dead letters of ``endpoint`` (default: every endpoint); prints one line
    per endpoint and returns how many were replayed in all."""
    names = _names(endpoints, endpoint)
    client = connection.connect(redis_url, options, decode_responses=False)
    total = 0
    try:
        for name in names:
            left = None if limit is None else limit - total
            if left is not None and left <= 0:
                break
            n = await replay(client, name, since=since, limit=left)
            print(f"{name}: replayed {n} dead letter(s)", file=out)
            total += n
    finally:
        await client.aclose()
    return total


async def dead_command(
    redis_url: str,
    endpoints: Sequence[WebhookEndpoint | str],
    *,
    endpoint: str | None = None,
    limit: int | None = 100,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    options: RedisSettings | None = None,
) -> int:
    """Print the dead letters (oldest first, at most ``limit`` per endpoint, None: all)
    and, per endpoint, how many there are and how many surveys wait behind them (on
    ``out``; on ``err`` with ``as_json``, which keeps ``out`` one dead letter a line).
    Returns how many were printed."""
    out = out or sys.stdout  # looked up now: a test (or caller) may have replaced them
    err = err or sys.stderr
    names = _names(endpoints, endpoint)
    client = connection.connect(redis_url, options, decode_responses=False)
    shown = 0
    try:
        for name in names:
            counts = await count_dead(client, name)
            items = await list_dead(client, name, limit=limit)
            for item in items:
                shown += 1
                if as_json:
                    print(json.dumps({"endpoint": name, **item}, ensure_ascii=False), file=out)
                    continue
                print(
                    f"{item['id']}  {name}  survey={item.get('sid', '?')} "
                    f"seq={item.get('seq', '?')} type={item.get('type', '?')} "
                    f"attempts={item.get('attempts', '?')} error={item.get('error', '')}",
                    file=out,
                )
            more = counts.dead_letters - len(items)
            summary = (
                f"{name}: {counts.dead_letters} dead letter(s), {len(items)} shown"
                + (f" (the oldest; {more} more: --limit N or --all)" if more > 0 else "")
                + f"; {counts.parked_surveys} survey(s) wait behind theirs until replayed"
            )
            print(summary, file=err if as_json else out)
    finally:
        await client.aclose()
    return shown


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minyi webhooks", description="Dead letters of the webhook feed."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dead = sub.add_parser("dead", help="list dead letters (no payloads)")
    again = sub.add_parser("replay", help="re-send dead letters")
    for p in (dead, again):
        p.add_argument("--config", metavar="FILE", help="the TOML config file")
        p.add_argument("--endpoint", metavar="NAME", help="one endpoint (default: all)")
    shown = dead.add_mutually_exclusive_group()
    shown.add_argument("--limit", type=int, default=100, help="at most N per endpoint (100)")
    shown.add_argument("--all", action="store_true", help="every dead letter")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    again.add_argument("--since", metavar="ID", help="from this dead-letter id on")
    again.add_argument("--limit", type=int, default=None, help="at most N in all")
    return parser


def main(
    argv: list[str],
    endpoints: Sequence[WebhookEndpoint | str] | None = None,
    redis_url: str | None = None,
) -> int:
    """Run ``minyi webhooks ...`` with ``argv`` after "webhooks"; returns the exit code.

    Without ``endpoints``/``redis_url`` they come from ``--config FILE``.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, or a wrong command line (already explained)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    options = None
    if endpoints is None or redis_url is None:
        if not args.config:
            print("minyi webhooks: --config FILE is required", file=sys.stderr)
            return EXIT_USAGE

        try:
            settings = load_settings(args.config)
        except ConfigError as e:
            print(e, file=sys.stderr)
            return EXIT_USAGE
        endpoints = settings.webhooks if endpoints is None else endpoints
        redis_url = settings.redis_url if redis_url is None else redis_url
        options = settings.redis
    try:
        if args.command == "replay":
            asyncio.run(
                replay_command(
                    redis_url,
                    endpoints,
                    endpoint=args.endpoint,
                    since=args.since,
                    limit=args.limit,
                    options=options,
                )
            )
        else:
            asyncio.run(
                dead_command(
                    redis_url,
                    endpoints,
                    endpoint=args.endpoint,
                    limit=None if args.all else args.limit,
                    as_json=args.json,
                    options=options,
                )
            )
    except LookupError as e:
        print(f"minyi webhooks: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (aioredis.ConnectionError, aioredis.TimeoutError) as e:
        print(f"minyi webhooks: Redis unreachable: {e}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
