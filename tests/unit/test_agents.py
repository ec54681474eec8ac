"""gateway.dialer.agents: an agent's state from the queue board, and the desk's actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.config import AgentPhone, AsteriskSettings, UnitQueue
from gateway.dialer import agents
from gateway.dialer.ami import AmiError
from gateway.dialer.calls import QueueBoard

NOW = 1_000_000.0


def member(queue: str = "minyi-unit-330602", name: str = "agent1", **over: str) -> dict[str, str]:
    event = {
        "Event": "QueueMemberStatus",
        "Queue": queue,
        "MemberName": name,
        "Interface": f"PJSIP/{name}",
        "StateInterface": f"PJSIP/{name}",
        "Status": "1",
        "Paused": "0",
        "InCall": "0",
        "LastCall": "0",
    }
    return event | over


def board(*events: dict[str, str], wrapup_s: float = 5.0) -> QueueBoard:
    b = QueueBoard(wrapup_s=wrapup_s)
    for e in events:
        b.feed(e)
    return b


def state(b: QueueBoard, name: str = "agent1") -> str:
    return agents.agent_states(b, {name}, NOW)[name][0]


@pytest.mark.parametrize(
    ("over", "want"),
    [
        ({}, "free"),
        ({"Status": "5"}, "unreachable"),  # qualify failed: AST_DEVICE_UNAVAILABLE
        ({"Status": "4"}, "unreachable"),  # invalid: not registered
        ({"Status": "0"}, "unreachable"),  # unknown is never counted free
        ({"Status": "6"}, "ringing"),
        ({"Status": "2"}, "on_call"),
        ({"InCall": "1"}, "on_call"),
        ({"Paused": "1", "PausedReason": "phone"}, "paused"),
        ({"LastCall": str(NOW - 2)}, "wrapup"),
        ({"LastCall": str(NOW - 6)}, "free"),
        ({"Status": "5", "Paused": "1"}, "unreachable"),  # a dead phone, paused or not
    ],
)
def test_one_queue_member_state(over: dict[str, str], want: str) -> None:
    b = board(member(**over))
    assert state(b) == want
    # free exactly when the pacing would dial for the agent
    assert (want == "free") == bool(b.free("minyi-unit-330602", NOW))


def test_no_membership_is_logged_out_and_free_in_one_queue_is_free() -> None:
    assert state(board()) == "logged_out"
    b = board(member(Paused="1"), member(queue="minyi-unit-330603"))
    assert state(b) == "free"
    b = board(member(Paused="1"), member(queue="minyi-unit-330603", Paused="1"))
    assert state(b) == "paused"
    removed = {"Event": "QueueMemberRemoved", "Queue": "minyi-unit-330602"}
    b.feed(removed | {"Interface": "PJSIP/agent1"})
    b.feed(removed | {"Queue": "minyi-unit-330603", "Interface": "PJSIP/agent1"})
    assert state(b) == "logged_out"


def test_an_agent_in_our_call_is_on_call_though_a_late_status_says_free() -> None:
    b = board(member(Status="6"))
    b.busy("PJSIP/agent1", "cb-1")  # AgentConnect
    b.feed(member())  # a late "not in use", InCall 0
    assert state(b) == "on_call"
    b.released("PJSIP/agent1", "cb-1")
    assert state(b) == "free"


def test_payload_names_units_interface_and_pause_reason() -> None:
    b = board(member(Paused="1", PausedReason="desk"))
    (st, payload) = agents.agent_states(b, (), NOW)["agent1"]
    assert st == "paused"
    assert payload == {"units": ["330602"], "interface": "PJSIP/agent1", "reason": "desk"}
    assert agents.agent_states(board(), ("agent9",), NOW) == {
        "agent9": ("logged_out", {"units": []})
    }


# --- the actions -------------------------------------------------------------------------
class FakeAmi:
    """Records actions; answers like Asterisk 22 for members already there or absent."""

    def __init__(self, refuse: Mapping[str, str] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = dict(refuse or {})

    async def action(self, fields: Mapping[str, Any], limit_s: float | None = None) -> Any:
        self.sent.append(dict(fields))
        message = self.refuse.get(f"{fields['Action']} {fields.get('Queue', '')}".strip())
        if message is not None:
            raise AmiError(f"{fields['Action']}: {message}")
        return {"Response": "Success"}


def directory(log_in: bool = True) -> agents.AgentDirectory:
    return agents.AgentDirectory.from_settings(
        AsteriskSettings(
            ami_username="minyi",
            ami_secret="x",
            recordings_dir="/r",
            agents=(AgentPhone("agent1", password="p"), AgentPhone("agent2", password="p")),
            units=(UnitQueue("330602", ("agent1", "agent2")), UnitQueue("330603", ("agent1",))),
            agents_log_in=log_in,
        )
    )


async def test_login_joins_each_unit_queue_and_already_there_is_done() -> None:
    ami = FakeAmi({"QueueAdd minyi-unit-330603": "Unable to add interface: Already there"})
    result = await agents.login(ami, directory(), "agent1")
    assert result == agents.ActionResult("agent1", "login", True)
    assert [(f["Action"], f["Queue"], f["MemberName"]) for f in ami.sent] == [
        ("QueueAdd", "minyi-unit-330602", "agent1"),
        ("QueueAdd", "minyi-unit-330603", "agent1"),
    ]
    assert ami.sent[0]["Interface"] == ami.sent[0]["StateInterface"] == "PJSIP/agent1"


async def test_logout_pause_unpause() -> None:
    ami = FakeAmi({"QueueRemove minyi-unit-330602": "Unable to remove interface: Not there"})
    assert (await agents.logout(ami, directory(), "agent2")).ok
    assert ami.sent == [
        {"Action": "QueueRemove", "Queue": "minyi-unit-330602", "Interface": "PJSIP/agent2"}
    ]
    ami.sent.clear()
    assert (await agents.pause(ami, directory(), "agent1", reason="desk; x")).ok
    assert (await agents.unpause(ami, directory(), "agent1")).ok
    assert [(f["Paused"], f["Reason"]) for f in ami.sent] == [("true", "deskx"), ("false", "desk")]
    assert all("Queue" not in f for f in ami.sent)  # every queue of the agent


async def test_refusals_say_why() -> None:
    ami = FakeAmi({"QueuePause": "Interface not found"})
    assert await agents.pause(ami, directory(), "agent1") == agents.ActionResult(
        "agent1", "pause", False, "not logged in"
    )
    assert (await agents.login(ami, directory(), "nobody")).detail == "no such agent"
    static = await agents.login(ami, directory(log_in=False), "agent1")
    assert not static.ok and "static" in static.detail
    assert [f["Action"] for f in ami.sent] == ["QueuePause"]  # nothing else was sent
    assert agents.AgentDirectory.from_settings(None).agents == {}
