"""The SMS center on the npm `smpp` package (tests/peers/smpp_smsc/server.js), driven from
the tests: a peer the project did not write.

`NpmSmsc` runs it as a node process on loopback and offers what the SMS loop tests use
of the project's simulator (`smsc.simulator.SmscSimulator`): `start`/`stop`/`port`,
`set_behaviour`, `submits`, `counters`, `inject_mo`, `drop_connections`. Its control
channel is HTTP on loopback; the calls here are short blocking requests (a test's event
loop pauses for a millisecond, the node process does not wait on it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "smpp_smsc"
SERVER = HERE / "server.js"


@dataclass
class PeerSubmit:
    """One submit_sm the peer answered (the fields the tests read)."""

    index: int
    at: float
    source: str
    dest: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    text: str
    part: tuple[int, int, int] | None  # (reference, total, number) from the UDH
    status: int
    message_id: str
    duplicate: bool

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PeerSubmit:
        part = d.get("part")
        return cls(
            index=int(d["index"]),
            at=float(d["at"]),
            source=str(d["source"]),
            dest=str(d["dest"]),
            data_coding=int(d["data_coding"]),
            esm_class=int(d["esm_class"]),
            registered_delivery=int(d["registered_delivery"]),
            text=str(d["text"]),
            part=(int(part[0]), int(part[1]), int(part[2])) if part else None,
            status=int(d["status"]),
            message_id=str(d["message_id"]),
            duplicate=bool(d["duplicate"]),
        )


class NpmSmsc:
    """The npm `smpp` SMS center as a node process on a free loopback port."""

    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts
        self.port = 0
        self.control_port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._submits: list[PeerSubmit] = []

    async def start(self) -> None:
        """Start node and wait for its `ready` line."""
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "smpp").is_dir():
            raise RuntimeError("node or tests/peers/smpp_smsc/node_modules missing: run make setup")
        argv = [str(SERVER)]
        for user, password in self.accounts.items():
            argv += ["--account", f"{user}:{password}"]
        self._proc = await asyncio.create_subprocess_exec(
            node, *argv, cwd=HERE, stdout=asyncio.subprocess.PIPE
        )
        assert self._proc.stdout is not None
        line = (await asyncio.wait_for(self._proc.stdout.readline(), 20)).decode()
        if not line.startswith("ready "):
            raise RuntimeError(f"the npm SMS center did not start: {line!r}")
        fields = dict(item.split("=") for item in line.split()[1:])
        self.port, self.control_port = int(fields["smpp"]), int(fields["control"])

    async def stop(self) -> None:
        """Stop the node process."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await asyncio.wait_for(self._proc.wait(), 10)
        self._proc = None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    # --- what the loop tests use ----------------------------------------------------

    def set_behaviour(self, **changes: Any) -> None:
        """throttle_every, outcomes ([{pattern, stat, err}]), dlr_delay_ms."""
        self._call("POST", "/behaviour", changes)

    @property
    def submits(self) -> list[PeerSubmit]:
        """Every answered submit_sm so far (fetched since the last call)."""
        page = self._call("GET", f"/submits?since={len(self._submits)}")
        self._submits.extend(PeerSubmit.from_json(d) for d in page["submits"])
        return self._submits

    @property
    def counters(self) -> dict[str, int]:
        """binds, drops, submit_sm, accepted, throttled, duplicates, deliver_* ..."""
        return {k: int(v) for k, v in self._call("GET", "/stats").items()}

    def deliveries(self) -> list[dict[str, Any]]:
        """Every receipt and MO deliver_sm, with its attempts and acknowledgement."""
        return list(self._call("GET", "/deliveries")["deliveries"])

    def inject_mo(
        self, source: str, dest: str, text: str, *, split: str = "udh8", reverse: bool = False
    ) -> list[int]:
        """A citizen's reply (UCS-2); a long one in parts with an 8-bit ("udh8") or a
        16-bit ("udh16") concatenation UDH, last part first with `reverse`."""
        body = {"source": source, "dest": dest, "text": text, "split": split, "reverse": reverse}
        return list(self._call("POST", "/mo", body)["deliveries"])

    def drop_connections(self, after: int = 0) -> None:
        """Drop every link now, or once `after` more submit_sm came (that one is lost
        unanswered: a drop mid-batch)."""
        self._call("POST", "/drop", {"after": after})
