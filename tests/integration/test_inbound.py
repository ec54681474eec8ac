"""The inbound worker on a real Redis: a receipt the store refuses is kept with Redis's
message and the stream moves on; the others of the batch are applied."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from devstack.localstack import free_port
from gateway.config import parse_settings
from gateway.store import keys
from gateway.store.surveys import Store
from sms.inbound import Inbound, store_pdu
from sms.smpp.codec import encode
from smsc.messages import receipt
from tests.integration.sms_harness import SOURCE_ADDR, config
from tests.waiting import eventually

pytestmark = pytest.mark.integration
PHONE = "13800138000"


def receipt_pdu(message_id: str, stat: str = "DELIVRD", err: int = 0) -> bytes:
    now = time.time()
    body = receipt(
        message_id=message_id,
        citizen=PHONE,
        gateway_addr=SOURCE_ADDR,
        stat=stat,
        err=err,
        submitted_at=now,
        done_at=now,
        text="",
        mode="text",
    )
    return encode(body, 1)


async def test_a_receipt_the_store_refuses_is_kept_with_its_reason_and_the_rest_applied(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings(config(store_url(store), 1, "http://127.0.0.1:1/", free_port()))
    common = dict(smsc="smsc-1", bind="b1", msgid_ttl_s=60, dlr_timeout_s=60, reply_window_s=60)
    for n in range(1, 6):
        sid = f"S{n}"
        await store.intake(
            sid, PHONE, {"template": "default"}, cap_s=0, defer_at=None, ttl_s=0,
            accepted_payload={},
        )  # fmt: skip
        await store.send_begin(sid, 0, 3600, 3600)
        await store.part_submitted(sid, 1, 1, message_id_key=str(n), message_id=str(n), **common)
    # a corrupt message-id mapping: minyi_receipt refuses it, the same way every time
    await store.redis.set(keys.MSGID.format(smsc="smsc-1", message_id="3"), "garbage")
    for n in range(1, 6):
        await store_pdu(
            store, "b1", "smsc-1", receipt_pdu(str(n), "UNDELIV" if n == 5 else "DELIVRD")
        )
    inbound = Inbound(store.redis, store, settings, consumer="t")
    stop = asyncio.Event()
    task = asyncio.create_task(inbound.run(stop))
    try:
        await eventually(lambda: inbound.counts.get("receipt_final", 0) == 4)
        await eventually(lambda: inbound.counts.get("unhandled", 0) == 1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    states = [(await store.get_survey(f"S{n}") or {}).get("state") for n in range(1, 6)]
    assert states == ["delivered", "delivered", "submitted", "delivered", "undeliverable"]
    orphans = await store.redis.xrange(keys.DLR_ORPHANS)
    assert len(orphans) == 1
    assert "message id maps to garbage" in orphans[0][1]["error"]
    assert (await store.redis.xpending(keys.INBOUND, keys.INBOUND_GROUP))["pending"] == 0
    refused = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("message id maps to garbage" in r.getMessage() for r in refused)


def store_url(store: Store) -> str:
    kw = store.redis.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/0"
