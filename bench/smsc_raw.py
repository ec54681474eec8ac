"""Raw submit_sm throughput of the SMSC simulator on one bind.

A minimal pipelining client (sms.smpp.codec, asyncio.Protocol) keeps `--window` submit_sm
unanswered at all times until `--count` are answered; with `--dlr` it also asks for,
and acknowledges, every receipt. By default it spawns the simulator in its own process
(so the two do not share one event loop); `--port` targets one already running.

    .venv/bin/python bench/smsc_raw.py --count 20000 --window 100

The last line printed is JSON: {"submits": ..., "submits_per_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sms.smpp.codec import Decoder, encode  # noqa: E402  (after the path fix above)
from sms.smpp.pdu import (  # noqa: E402
    BindKind,
    BindRequest,
    DeliverSm,
    DeliverSmResp,
    SubmitSm,
    SubmitSmResp,
)


class Client(asyncio.Protocol):
    """Bind, then keep the window full and count answers."""

    def __init__(self, pdus: list[bytes], window: int, receipts: bool, account: tuple[str, str]):
        self.pdus, self.window, self.want_receipts = pdus, window, receipts
        self.account = account
        self.decoder = Decoder()
        self.transport: asyncio.Transport | None = None
        self.sent = self.answered = self.receipts = 0
        self.statuses: Counter[int] = Counter()
        self.started = 0.0
        self.bound = False
        self.done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Bind as soon as connected."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        system_id, password = self.account
        transport.write(encode(BindRequest(BindKind.TRANSCEIVER, system_id, password), 0x7FFFFFFF))

    def connection_lost(self, exc: Exception | None) -> None:
        """A drop before the end fails the run."""
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"lost after {self.answered} answers"))

    def data_received(self, data: bytes) -> None:
        """Count answers, acknowledge receipts, refill the window in one write."""
        assert self.transport is not None
        self.decoder.feed(data)
        out: list[bytes] = []
        while (pdu := self.decoder.next_pdu()) is not None:
            body = pdu.body
            if isinstance(body, SubmitSmResp):
                self.answered += 1
                self.statuses[pdu.status] += 1
            elif isinstance(body, DeliverSm):
                self.receipts += 1
                out.append(encode(DeliverSmResp(), pdu.sequence))
            elif not self.bound:
                if pdu.status:
                    self.done.set_exception(RuntimeError(f"bind refused: {pdu.status:#x}"))
                    return
                self.bound = True
                self.started = time.perf_counter()
        if self.bound:
            top_up = min(self.window - (self.sent - self.answered), len(self.pdus) - self.sent)
            if top_up > 0:
                out.extend(self.pdus[self.sent : self.sent + top_up])
                self.sent += top_up
        if out:
            self.transport.write(b"".join(out))
        finished = self.answered == len(self.pdus)
        if finished and (not self.want_receipts or self.receipts >= self.statuses[0]):
            if not self.done.done():
                self.done.set_result(time.perf_counter() - self.started)


def build_pdus(count: int, receipts: bool) -> list[bytes]:
    """Distinct destinations, UCS-2 survey text, sequence numbers 1..count."""
    text = "【公安】您好，请对本次110接警服务评价：回复1满意，2基本满意，3不满意".encode(
        "utf-16-be"
    )
    return [
        encode(
            SubmitSm(
                source_addr="106575",
                dest_addr=f"138{i:08d}",
                data_coding=8,
                registered_delivery=1 if receipts else 0,
                short_message=text,
            ),
            i + 1,
        )
        for i in range(count)
    ]


async def spawn_simulator() -> tuple[asyncio.subprocess.Process, int]:
    """Start `python -m smsc` on a free port and read its ready line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsc",
        "--port",
        "0",
        "--control-port",
        "-1",
        "--account",
        "minyi:secret",
        "--log-level",
        "WARNING",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    match = re.search(r"smpp=[^ ]+:(\d+)", line)
    if not match:
        proc.terminate()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(match.group(1))


async def run(args: argparse.Namespace) -> dict[str, object]:
    """One measured run; returns the result line."""
    proc = None
    port = args.port
    if port is None:
        proc, port = await spawn_simulator()
    try:
        pdus = build_pdus(args.count, args.dlr)
        loop = asyncio.get_running_loop()
        account = tuple(args.account.split(":", 1))
        transport, client = await loop.create_connection(
            lambda: Client(pdus, args.window, args.dlr, (account[0], account[1])),
            args.host,
            port,
        )
        try:
            seconds = await asyncio.wait_for(client.done, args.limit)
        finally:
            transport.close()
    finally:
        if proc is not None:
            proc.terminate()
            await proc.wait()
    return {
        "submits": client.answered,
        "window": args.window,
        "seconds": round(seconds, 3),
        "submits_per_s": round(client.answered / seconds),
        "statuses": {f"{k:#x}": v for k, v in sorted(client.statuses.items())},
        "receipts": client.receipts,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--dlr", action="store_true", help="request and ack receipts")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="use a running simulator")
    parser.add_argument("--account", default="minyi:secret")
    parser.add_argument("--limit", type=float, default=300.0, help="give up after seconds")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
