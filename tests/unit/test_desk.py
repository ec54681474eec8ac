"""The desk's pure parts: PIN hashes, its config, the pop's card, the board's words for
agent states, the charts, and the CLI that hashes a PIN."""

from __future__ import annotations

import io
import re
import sys
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ConfigError, parse_settings
from gateway.desk import cli
from gateway.desk.actions import STATE_NAMES, desk_directory
from gateway.desk.auth import hash_pin, verify_pin
from gateway.desk.chart import funnel_svg, hourly_svg
from gateway.desk.pages import CUE_NAMES, card_html
from gateway.desk.pop import card
from gateway.dialer import agents
from gateway.store.events import Event
from sms.understand import cues
from tests.unit.test_config_defaults import MINIMAL, PIN_HASH

TZ = ZoneInfo("Asia/Shanghai")
FAST = {"n": 1 << 10}  # the tests' hashes: the same code, less work


def test_a_pin_hash_verifies_its_pin_only_and_is_salted() -> None:
    h = hash_pin("4711", **FAST)
    assert re.fullmatch(r"scrypt\$1024\$8\$1\$[-_A-Za-z0-9=]+\$[-_A-Za-z0-9=]+", h)
    assert verify_pin("4711", h)
    assert not verify_pin("4712", h) and not verify_pin("", h)
    assert hash_pin("4711", **FAST) != h  # a fresh salt each time
    assert not verify_pin("4711", "scrypt$x$8$1$AAAA$BBBB")  # malformed: no, not a crash
    assert not verify_pin("4711", "md5$whatever")


def desk(**table: Any) -> dict[str, Any]:
    return {**MINIMAL, "api": {"desk": table}}


@pytest.mark.parametrize(
    ("table", "where", "says"),
    [
        (
            {"agents": [{"id": "a1", "pin_hash": "1234"}]},
            "api.desk.agents[0].pin_hash",
            "never the PIN",
        ),
        ({"agents": [{"id": "a 1", "pin_hash": PIN_HASH}]}, "api.desk.agents[0].id", "letters"),
        (
            {"supervisors": [{"id": "s1", "pin_hash": PIN_HASH}]},
            "api.desk.supervisors[0].units",
            "oversee",
        ),
        (
            {
                "agents": [{"id": "x", "pin_hash": PIN_HASH}],
                "supervisors": [{"id": "x", "pin_hash": PIN_HASH, "units": ["3306"]}],
            },
            "api.desk",
            "twice",
        ),
        (
            {"agents": [{"id": "a1", "pin_hash": PIN_HASH, "units": ["3306*"]}]},
            "api.desk.agents[0].units",
            "unit codes",
        ),
        (
            {"agents": [{"id": "a1", "pin_hash": PIN_HASH, "interface": "agent1"}]},
            "api.desk.agents[0].interface",
            "PJSIP/1001",
        ),
        ({"session_idle_minutes": 0}, "api.desk.session_idle_minutes", ""),
        ({"agent": []}, "api.desk.agent", 'did you mean "agents"'),
    ],
)
def test_desk_config_mistakes_name_their_setting(
    table: dict[str, Any], where: str, says: str
) -> None:
    with pytest.raises(ConfigError) as e:
        parse_settings(desk(**table), {})
    assert str(e.value).startswith(f"config error: {where}: "), str(e.value)
    assert says in str(e.value)


def test_the_cli_prints_a_hash_that_verifies(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("pin-4711\n"))
    assert cli.main(["hash-pin", "--stdin"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_pin("pin-4711", printed) and "pin-4711" not in printed
    settings = parse_settings(desk(agents=[{"id": "a1", "pin_hash": printed}]), {})
    assert settings.api.desk.users[0].pin_hash == printed
    monkeypatch.setattr(sys, "stdin", io.StringIO("12"))
    assert cli.main(["hash-pin", "--stdin"]) == 1  # too short


def ev(etype: str, payload: dict[str, Any], t: str = "2026-12-02T10:00:00+08:00") -> Event:
    return Event(id="x", type=etype, survey_id="S1", seq=1, time=t, payload=payload)


SURVEY = {
    "id": "S1",
    "phone": "13800138000",
    "state": "called",
    "unit_code": "330602",
    "service_type": "110",
    "officer_id": "PC0421",
    "occurred_at": "2026-12-01T01:30:00+00:00",
}
EVENTS = [
    ev(
        "survey.replied",
        {
            "text": "3",
            "understanding": {
                "rating": "unsatisfied",
                "reasons": ["attitude"],
                "explanation": ["digit 3"],
                "cues": ["digit"],
            },
        },
    ),
    ev("callback.attempt", {"callback_id": "cb-1", "outcome": "no_answer", "attempt": 1}),
    ev("survey.recheck", {"work_order": "WO-77", "note": "已整改 <b>"}),
    ev(
        "callback.attempt",
        {"callback_id": "cb-2", "outcome": "connected", "attempt": 2, "agent": "agent1"},
    ),
]


def pop(**over: Any) -> Any:
    args: dict[str, Any] = {
        "tz": TZ,
        "full_number": True,
        "service_names": {"110": "110接处警"},
        "unit_names": {"330602": "越城区"},
        "sms_text": lambda _s: "【平安】您好",
    }
    args.update(over)
    return card(SURVEY, EVENTS, "cb-2", **args)


def test_the_card_holds_what_the_agent_needs_and_masks_for_others() -> None:
    c = pop()
    assert c.citizen == "13800138000" and pop(full_number=False).citizen == "138****8000"
    assert (c.service, c.unit, c.officer, c.occurred_at) == (
        "110接处警",
        "越城区（330602）",
        "PC0421",
        "12月1日 09:30",  # local time of the site
    )
    assert (
        c.reply is not None and c.reply.rating == "unsatisfied" and c.reply.reasons == ("attitude",)
    )
    assert [(a.attempt, a.outcome) for a in c.attempts] == [(1, "no_answer")]  # earlier only
    assert c.second_callback and c.work_order == "WO-77"
    assert c.ready_for_disposition


def test_the_card_page_escapes_and_closes_the_form_until_the_call_ends() -> None:
    html = card_html(pop(), labels={"attitude": "态度差"}, csrf="tok", wrapup_s=30, ended_ts=1.0)
    assert "已整改 &lt;b&gt;" in html and '<b>"' not in html
    assert 'id="wrapup" data-ended="1.000" data-wrapup="30"' in html
    assert "线索：选项数字" in html  # the kinds of evidence in Chinese
    assert 'id="submit-disposition">' in html  # open: the call is over
    calling = pop()
    object.__setattr__(calling, "state", "calling")
    html = card_html(calling, labels={}, csrf="tok", wrapup_s=30, ended_ts=None)
    assert 'id="submit-disposition" disabled' in html and 'id="wrapup"' not in html


def test_every_agent_state_has_its_chinese_name() -> None:
    assert set(STATE_NAMES) == set(agents.STATES)


def test_the_desk_acts_for_its_agents_and_the_rendered_ones() -> None:
    table = {
        "agents": [
            {"id": "agent1", "pin_hash": PIN_HASH, "units": ["330602"]},
            {"id": "a9", "pin_hash": PIN_HASH, "units": ["330603"], "interface": "PJSIP/1009"},
        ]
    }
    settings = parse_settings(desk(**table), {})
    d = desk_directory(settings)
    assert d.get("agent1") == agents.AgentInfo("agent1", "PJSIP/agent1", ("minyi-unit-330602",))
    assert d.get("a9").interface == "PJSIP/1009" and d.log_in


def test_the_charts_are_svg_with_their_numbers() -> None:
    svg = funnel_svg([("调查短信", 10), ("已回复", 4), ("<x>", 0)])
    assert svg.startswith("<svg") and 'data-n="4"' in svg and "4（40%）" in svg
    assert "&lt;x&gt;" in svg
    hourly = hourly_svg([0] * 9 + [5] + [0] * 14, [1] * 24)
    assert hourly.count("<rect") == 2 + 48 and "<title>09时 5</title>" in hourly


def test_every_kind_of_evidence_has_its_chinese_name() -> None:
    kinds = {v for k, v in vars(cues).items() if k.isupper() and isinstance(v, str)}
    assert kinds and kinds <= set(CUE_NAMES), kinds - set(CUE_NAMES)
