"""The callback dialer end to end on real servers: the gateway service (API, SMS,
webhooks, dialer) against redis-server, the SMSC simulator, the webhook receiver and the
provisioned Asterisk 22 making real SIP calls to the test outside world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asterisk_harness import AsteriskInfo, wav_rms

from gateway.localstack import SOURCE_ADDR, free_port
from tests.conftest import RedisServer
from tests.integration.sms_harness import Loop, running_loop, survey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PREFIX_EVENTS = ("survey.accepted", "survey.queued", "survey.submitted")


def dialer_config(info: AsteriskInfo, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "ami": {
            "host": info.host,
            "port": info.ami_port,
            "username": info.ami_username,
            "secret": info.ami_secret,
            "ping_interval_s": 1,
            "ping_timeout_s": 2,
        },
        "trunk": info.trunk,
        "units": ["330602", "330603"],
        "recordings_dir": str(info.recordings_dir),
        "calling_hours": {"start": "00:00", "end": "23:59:59"},
        "max_attempts": 3,
        "retry_spacing_minutes": [0.02],  # 1.2 s
        "ring_timeout_s": 4,
        "wrapup_s": 1,
    }
    cfg.update(over)
    return cfg


def _loop(redis: RedisServer, info: AsteriskInfo, **dialer: Any) -> Any:
    return running_loop(
        redis.url,
        free_port(),
        workers=["api", "sms", "webhooks", "dialer"],
        dialer=dialer_config(info, **dialer),
    )


async def _unsatisfied(loop: Loop, sid: str, phone: str, unit: str = "330602") -> None:
    status, body = await loop.post(survey(sid.lstrip("S"), phone, unit_code=unit))
    assert status == 201, body
    await loop.wait_for(lambda: "survey.submitted" in loop.types(sid))
    loop.smsc.inject_mo(phone, SOURCE_ADDR, "3 出警太慢，态度也不好")


def _attempts(loop: Loop, sid: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in loop.receiver.events.get(sid, []) if e["type"] == "callback.attempt"]


async def test_unsatisfied_reply_is_called_back_to_a_free_agent_and_recorded(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    async with _loop(clean_redis, asterisk) as loop:
        await _unsatisfied(loop, "S101", "13800008101")
        await loop.wait_for(lambda: "survey.called" in loop.types("S101"), within_s=90)
        types = [t for t in loop.types("S101") if t not in ("survey.delivered", "sms.receipt")]
        assert types[-5:] == [
            "survey.replied",
            "survey.callback_pending",
            "survey.calling",
            "callback.attempt",
            "survey.called",
        ]
        (attempt,) = _attempts(loop, "S101")
        assert attempt["outcome"] == "connected"
        assert attempt["agent"] in ("agent1", "agent2")  # unit 330602's agents
        assert attempt["attempt"] == 1 and attempt["next"]["state"] == "called"
        recs = attempt["recordings"]
        for leg in ("mix", "citizen", "agent"):
            path = Path(recs[leg]["path"])
            assert path.parent == asterisk.recordings_dir
            assert path.name.endswith(".wav") and attempt["callback_id"] in path.name
            assert recs[leg]["duration_s"] > 2.0, recs[leg]
            assert wav_rms(path) > 0.01, f"{leg} leg is silent"
        assert loop.receiver.seqs("S101") == list(range(1, len(loop.receiver.seqs("S101")) + 1))
