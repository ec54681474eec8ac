"""devstack's free ports: a SIP port is free for TCP as well as UDP (Asterisk and
baresip bind both on it)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from devstack import localstack
from devstack.localstack import free_port, free_sip_port

IP = "127.0.0.1"


def test_a_sip_port_held_on_tcp_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port free for UDP while something listens on it over TCP: the case a CI run hit.
    with socket.socket() as held:
        held.bind((IP, 0))
        held.listen()
        taken = int(held.getsockname()[1])
        offered = [taken]
        real = socket.socket

        class FirstUdpGetsTaken(real):  # type: ignore[misc,valid-type]
            """A real socket whose first UDP bind to port 0 gets the TCP-held port."""

            def bind(self, address: Any) -> None:
                if self.type == socket.SOCK_DGRAM and address[1] == 0 and offered:
                    address = (address[0], offered.pop())
                super().bind(address)

        monkeypatch.setattr(localstack.socket, "socket", FirstUdpGetsTaken)
        port = free_sip_port(IP)
        monkeypatch.undo()
        assert not offered  # the held port was offered first
        assert port != taken
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((IP, port))


def test_no_port_free_for_both_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind((IP, 0))
        held.listen()
        taken = int(held.getsockname()[1])
        real = socket.socket

        class AlwaysTaken(real):  # type: ignore[misc,valid-type]
            def bind(self, address: Any) -> None:
                if self.type == socket.SOCK_DGRAM and address[1] == 0:
                    address = (address[0], taken)
                super().bind(address)

        monkeypatch.setattr(localstack.socket, "socket", AlwaysTaken)
        with pytest.raises(OSError, match="free for both UDP and TCP in 3 tries"):
            free_sip_port(IP, tries=3)


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_free_port_is_bindable_for_its_kind(kind: socket.SocketKind) -> None:
    port = free_port(IP, kind)
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((IP, port))
