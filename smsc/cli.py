"""Command line of the SMSC simulator: `python -m smsc --help`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from smsc.rules import Behaviour, apply_changes
from smsc.simulator import SmscSimulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smsc", description="SMPP 3.4 SMS center simulator"
    )
    parser.add_argument("--host", default="127.0.0.1", help="SMPP listen address")
    parser.add_argument("--port", type=int, default=2775, help="SMPP port (0 = any)")
    parser.add_argument("--control-host", default="127.0.0.1", help="HTTP control address")
    parser.add_argument("--control-port", type=int, default=2776, help="-1 disables HTTP")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SYSTEM_ID:PASSWORD",
        help="an ESME account (repeatable); default minyi:secret",
    )
    parser.add_argument("--tps", type=float, help="max submit_sm per second per bind")
    parser.add_argument("--window", type=int, help="max unanswered submit_sm per bind")
    parser.add_argument("--id-format", choices=["hex", "dec", "uuid"], default="hex")
    parser.add_argument("--id-upper", action="store_true")
    parser.add_argument("--id-width", type=int, default=0)
    parser.add_argument("--dlr-id-format", choices=["hex", "dec", "uuid"])
    parser.add_argument("--dlr-mode", choices=["text", "tlv", "both"], default="both")
    parser.add_argument("--dlr-delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--dlr-before-resp", action="store_true")
    parser.add_argument("--response-delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--deliver-timeout", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--auto-reply",
        metavar="JSON",
        help='citizens reply, e.g. {"by_suffix": {"1": "1", "3": "3"}, "delay": 1}',
    )
    parser.add_argument(
        "--behaviour", metavar="JSON", help="any Behaviour fields, as POST /behaviour takes"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _behaviour_from_args(args: argparse.Namespace) -> Behaviour:
    behaviour = Behaviour()
    changes: dict[str, Any] = {
        "id_format": args.id_format,
        "id_upper": args.id_upper,
        "id_width": args.id_width,
        "dlr_id_format": args.dlr_id_format,
        "dlr_mode": args.dlr_mode,
        "dlr_delay": args.dlr_delay,
        "dlr_before_resp": args.dlr_before_resp,
        "response_delay": args.response_delay,
        "deliver_timeout": args.deliver_timeout,
        "max_tps": args.tps,
        "window": args.window,
    }
    if args.auto_reply:
        changes["auto_reply"] = json.loads(args.auto_reply)
    if args.behaviour:
        changes.update(json.loads(args.behaviour))
    apply_changes(behaviour, changes)
    return behaviour


async def _serve(args: argparse.Namespace, accounts: dict[str, str], behaviour: Behaviour) -> None:
    sim = SmscSimulator(accounts, behaviour)
    control_port = None if args.control_port < 0 else args.control_port
    await sim.start(args.host, args.port, control_port=control_port, control_host=args.control_host)
    control = f"http://{args.control_host}:{sim.control_port}" if sim.control_port else "off"
    print(f"smsc simulator ready smpp={args.host}:{sim.port} control={control}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the simulator until SIGINT/SIGTERM; 2 on bad options."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    accounts: dict[str, str] = {}
    for item in args.account or ["minyi:secret"]:
        system_id, sep, password = item.partition(":")
        if not sep or not system_id:
            print(f"--account wants SYSTEM_ID:PASSWORD, got {item!r}", file=sys.stderr)
            return 2
        accounts[system_id] = password
    try:
        behaviour = _behaviour_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        print(f"bad behaviour: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, accounts, behaviour))
    return 0
