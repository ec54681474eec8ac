"""Build tests/data/legacy/dump.rdb and manifest.json with the gateway at commit ec562f9.

The dump is the "old version" side of the upgrade test: surveys, streams and feed state
written by the code of commit ec562f9 (before the restructuring into packages), which
the new code must read. Run it against that commit, in a tree of its own and with that
tree's venv, so every import resolves to the old code::

    git worktree add /tmp/old ec562f9
    python3 -m venv /tmp/old-venv
    /tmp/old-venv/bin/pip install -e '/tmp/old[dev]' -r /tmp/old/requirements-test.txt
    mkdir -p /tmp/old/tests/data/legacy    # the old tree has no copy of this script
    cp tests/data/legacy/make_dump.py /tmp/old/tests/data/legacy/
    /tmp/old-venv/bin/python /tmp/old/tests/data/legacy/make_dump.py --out tests/data/legacy
    git worktree remove --force /tmp/old

It starts its own redis-server (``redis-server`` on PATH, else /usr/bin/redis-server;
RDB only, no AOF) on a free loopback port in a temporary directory, and drives it only
through the old code's public classes and functions: Store (intake, release_due,
send_begin, part_submitted, part_failed, receipt, sweep), the inbound worker's
``Inbound.handle`` on raw deliver_sm PDUs stored with ``store_pdu`` (receipts, replies,
long and incomplete MO messages), CallbackStore (promote, claim, result, disposition,
recheck, heartbeat, lease) with results built by ``gateway.attempts.attempt_result``, the
ASR job functions (``asr.jobs.record_outcome``, ``transcript_payload``,
``failed_payload``), ``recordings.index.index_recording``, the webhook worker
(``WebhookWorker`` against the reference ``WebhookReceiver``) and its ``Intake`` /
``EndpointQueue``. Stream consumer groups are read with ``gateway.streams.read``.

What it builds (fixed survey ids L-..., phones 139000000xx; the full list with the
expected state of each survey is in the manifest):

- surveys in every reachable state: deferred, rejected (opted_out, too_frequent),
  queued (taken by send_begin, no submit_sm_resp: pending in the sms:queue group; and
  one never read), submitted, delivered (1 and 3 parts, one released from quiet
  hours, one resent), undeliverable (failed receipt, refused submit, no receipt),
  replied (reply not understood, a 2-part MO), closed (satisfied, basically
  satisfied before its receipt, opted out, extension-code reply, undeliverable, IVR
  rating, agent disposition), no_reply, callback_pending (waiting, retry later,
  unroutable, IVR ready), calling, called, transcribed, unreachable, recheck;
- held and orphaned delivery receipts, an incomplete MO part set, unmatched replies,
  opt-outs, a raw inbound PDU not yet handled;
- webhook endpoint "core": most events delivered (high-water marks), five surveys with
  events waiting after a 500 (retry state, due in ~10 min), one dead letter (tiny
  max_age), one survey leased to a consumer that "crashed", and stream entries the
  endpoint's group has not read yet;
- ASR jobs (transcribed, recorded after a disposition, pending with a retryable error,
  dead-lettered), the recordings index, the dialer's heartbeat and Asterisk lease,
  the stats hash.

Key TTLs: every key the old code gave a TTL keeps one, but stretched to ten years at
the end (manifest ``ttl_stretched``: the TTL each had as written) so the fixture does
not rot: Redis drops expired keys when it loads an RDB. Reply windows and receipt
deadlines of open surveys are ten years too, so a sweep in the new version leaves
their states alone. The RDB also carries the old Redis function library ("minyi"):
the new code's FUNCTION LOAD REPLACE replaces it if its library keeps that name (a
library under another name with the same function names would be refused).

Re-running gives the same survey states, event types and counts, and the same fields
except times; times, stream ids, webhook lease tokens and backoff due times differ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

COMMIT = "ec562f9"
TZ = ZoneInfo("Asia/Shanghai")
FIXTURE_TTL_S = 10 * 365 * 86400  # TTLs and open deadlines: ten years
STRETCH_BELOW_S = 5 * 365 * 86400  # a TTL shorter than this is stretched to FIXTURE_TTL_S
SOURCE_ADDR = "106900001234"
SMSC = "default"
BIND = "cmcc-1"
UNIT = "330602"
UNIT_QUEUE = "unit:330602"
ENDPOINT = "core"
SECRET = "whsec_bWlueWktbGVnYWN5LWR1bXAtc2VjcmV0LTAxMjM0NTY3"  # base64 of 32 bytes
PBX = "127.0.0.1:5038"
CONSUMER = "gw-1"  # the gateway process's instance name (sms, inbound, webhooks)
TINY_S = 0.2  # deadlines meant to pass before the next sweep

# A realistic callback spacing, and one without a wait (attempts made one after another).
RETRY_SPACING_S = (1800.0, 7200.0)


def phone(n: int) -> str:
    return f"139000000{n:02d}"


def _check_old_code() -> str:
    """The commit of the tree the gateway package is imported from (must be ec562f9)."""
    import gateway

    tree = Path(gateway.__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = ""
    return head


# --- redis-server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_exe() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisProc:
    """A redis-server of our own: loopback, a free port, RDB only."""

    def __init__(self, workdir: Path, dbfilename: str = "dump.rdb") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                redis_exe(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(workdir),
                "--dbfilename", dbfilename,
                "--appendonly", "no",
                "--save", "",
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


# --- the builder ----------------------------------------------------------------------------


class Builder:
    """Drives the old code's classes to make each survey's history."""

    def __init__(self, redis: aioredis.Redis) -> None:
        from gateway.ami import AmiSettings
        from gateway.callback_store import CallbackStore
        from gateway.config import parse_settings
        from gateway.config_dialer import DialerSettings
        from gateway.store import Store
        from sms.inbound import Inbound

        self.redis = redis
        self.store = Store(redis, TZ)
        self.cb = CallbackStore(self.store)
        settings = parse_settings(
            {
                "redis_url": "redis://127.0.0.1:6379/0",
                "workers": ["sms"],
                "surveys": {"quiet_hours": {"enabled": False}},
                "sms": {
                    "source_addr": SOURCE_ADDR,
                    "extension_digits": 4,
                    "signature": "【绍兴公安】",
                    "templates": {
                        "default": {
                            "text": "{signature}您好，您于{date}在{unit_name}办理的{service}"
                            "业务，请您对民警的服务进行评价：{reply_scheme}。",
                            "max_parts": 3,
                        }
                    },
                    "binds": [
                        {
                            "name": BIND,
                            "host": "10.10.0.5",
                            "port": 7890,
                            "system_id": "minyi01",
                            "password": "secret1",
                        }
                    ],
                },
            },
            env={},
        )
        # Matching replies by the latest open survey looks back one reply window, and
        # incomplete MO part sets live twice the reassembly timeout: fixture lengths.
        settings = dataclasses.replace(
            settings,
            surveys=dataclasses.replace(settings.surveys, reply_window_s=float(FIXTURE_TTL_S)),
            sms=dataclasses.replace(settings.sms, mo_reassembly_timeout_s=FIXTURE_TTL_S / 2),
        )
        self.settings = settings
        self.inbound = Inbound(redis, self.store, settings, consumer=CONSUMER)
        ami = AmiSettings(host="127.0.0.1", port=5038, username="minyi", secret="fixture")
        self.dialer = DialerSettings(
            ami=ami,
            units=(UNIT,),
            retry_spacing_s=RETRY_SPACING_S,
            recordings_dir="/var/spool/asterisk/monitor/minyi",
        )
        self.dialer_now = dataclasses.replace(self.dialer, retry_spacing_s=(0.0,))
        self.sms_entries: dict[str, str] = {}  # survey id -> its sms:queue entry id
        self.mid_n = 0
        self.cid_n = 0
        self.pdu_seq = 0
        self.expected: dict[str, str] = {}  # survey id -> expected state
        self.notes: dict[str, str] = {}  # survey id -> what it stands for
        self.info: dict[str, Any] = {}  # what one phase leaves for a later one

    # --- helpers ------------------------------------------------------------------------
    def expect(self, sid: str, state: str, note: str) -> None:
        self.expected[sid] = state
        self.notes[sid] = note

    async def state(self, sid: str) -> str:
        s = await self.store.get_survey(sid)
        return "" if s is None else s.get("state", "")

    async def check(self, sid: str, state: str) -> None:
        got = await self.state(sid)
        if got != state:
            events = [e.type for e in await self.store.events(sid)]
            raise AssertionError(f"{sid}: state {got!r}, expected {state!r}; events {events}")

    def next_mid(self) -> str:
        self.mid_n += 1
        return f"5e{0x10A000 + self.mid_n:06x}"

    def next_cid(self) -> str:
        self.cid_n += 1
        return f"cb-{0x6C0DE5A100000000 + self.cid_n:016x}"

    async def intake(
        self, sid: str, n: int, *, unit: str = UNIT, defer_at: float | None = None
    ) -> Any:
        from gateway.privacy import mask_phone

        p = phone(n)
        fields = {
            "service_type": "110",
            "unit_code": unit,
            "officer_id": f"P{1000 + n}",
            "occurred_at": datetime.now(TZ).replace(microsecond=0).isoformat(),
            "template": "default",
        }
        return await self.store.intake(
            sid,
            p,
            fields,
            cap_s=7 * 86400,
            defer_at=defer_at,
            ttl_s=180 * 86400,
            accepted_payload=dict(fields) | {"phone_masked": mask_phone(p)},
        )

    async def read_sms_queue(self) -> None:
        """The sender reads new sms:queue entries (XREADGROUP, group "sms")."""
        from gateway import keys, streams

        await streams.ensure_group(self.redis, keys.SMS_QUEUE, keys.SMS_GROUP)
        for entry_id, fields in await streams.read(
            self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, CONSUMER, count=500, block_ms=None
        ):
            self.sms_entries[fields["sid"]] = entry_id

    async def ack_sms(self, sid: str) -> None:
        from gateway import keys

        entry_id = self.sms_entries.pop(sid)
        await self.store.calls.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)

    async def begin(self, sid: str, *, ext: bool = False, reply_s: float = FIXTURE_TTL_S) -> Any:
        await self.read_sms_queue()
        assert sid in self.sms_entries, f"{sid} is not in the sms queue"
        job = await self.store.send_begin(sid, 4 if ext else 0, reply_s + FIXTURE_TTL_S, reply_s)
        assert job is not None, f"send_begin refused {sid}"
        return job

    async def submit(
        self,
        sid: str,
        parts: int = 1,
        *,
        ext: bool = False,
        dlr_s: float = FIXTURE_TTL_S,
        reply_s: float = FIXTURE_TTL_S,
        resent_part: int = 0,
        begin: bool = True,
    ) -> list[str]:
        """What the sender does for a survey: send_begin, one submit_sm_resp per part
        (message ids are stored), XACK."""
        from sms.dlr import normalise_message_id

        if begin:
            await self.begin(sid, ext=ext, reply_s=reply_s)
        mids = []
        for i in range(1, parts + 1):
            mid = self.next_mid()
            mids.append(mid)
            await self.store.part_submitted(
                sid,
                i,
                parts,
                smsc=SMSC,
                message_id_key=normalise_message_id(mid, "text"),
                message_id=mid,
                bind=BIND,
                msgid_ttl_s=dlr_s + 86_400,
                dlr_timeout_s=dlr_s,
                reply_window_s=reply_s,
                resent=i == resent_part,
            )
        await self.ack_sms(sid)
        return mids

    async def deliver_sm(self, body: Any, *, handle: bool = True) -> None:
        """The ESME stores a raw deliver_sm; the inbound worker handles and XACKs it."""
        from gateway import keys, streams
        from sms import pdu as smpp
        from sms.inbound import store_pdu

        self.pdu_seq += 1
        await store_pdu(self.store, BIND, SMSC, smpp.encode(body, self.pdu_seq))
        if not handle:
            return
        await streams.ensure_group(self.redis, keys.INBOUND, keys.INBOUND_GROUP)
        entries = await streams.read(
            self.redis, keys.INBOUND, keys.INBOUND_GROUP, CONSUMER, count=100, block_ms=None
        )
        for entry_id, fields in entries:
            await self.inbound.handle(fields)
            await self.redis.xack(keys.INBOUND, keys.INBOUND_GROUP, entry_id)

    async def receipt(self, n: int, mid: str, stat: str = "DELIVRD", err: int = 0) -> None:
        from sms.simulator_messages import receipt

        now = time.time()
        await self.deliver_sm(
            receipt(
                message_id=mid,
                citizen=phone(n),
                gateway_addr=SOURCE_ADDR,
                stat=stat,
                err=err,
                submitted_at=now - 5,
                done_at=now,
                text="",
                mode="text",
            )
        )

    async def reply(
        self,
        n: int | str,
        text: str,
        *,
        ext: str = "",
        ref: int = 0,
        only: int | None = None,
        handle: bool = True,
    ) -> None:
        """A citizen's SMS (UCS-2; long texts in 8-bit-reference UDH parts). ``only``:
        just that part arrives."""
        from sms.simulator_messages import mo_parts

        citizen = phone(n) if isinstance(n, int) else n
        bodies = mo_parts(citizen=citizen, dest=SOURCE_ADDR + ext, text=text, reference=ref)
        if only is not None:
            bodies = [bodies[only - 1]]
        for body in bodies:
            await self.deliver_sm(body, handle=handle)

    async def delivered(self, sid: str, n: int, parts: int = 1, **kw: Any) -> list[str]:
        await self.intake(sid, n)
        mids = await self.submit(sid, parts, **kw)
        for mid in mids:
            await self.receipt(n, mid)
        return mids

    async def unsatisfied(self, sid: str, n: int, *, unit: str = UNIT) -> None:
        """A survey answered "3" (unsatisfied): callback_pending, in cb:wait."""
        await self.intake(sid, n, unit=unit)
        for mid in await self.submit(sid):
            await self.receipt(n, mid)
        await self.reply(n, "3 民警态度差，等了很久")
        await self.check(sid, "callback_pending")

    # --- callbacks ----------------------------------------------------------------------
    async def promote(self) -> int:
        await asyncio.sleep(0.01)  # due by the server's clock
        return await self.cb.promote((UNIT,), "")

    async def claim(self, sid: str, queue: str = UNIT_QUEUE, owner: str = "dialer-A") -> Any:
        cid = self.next_cid()
        claims = await self.cb.claim(queue, [cid], owner)
        assert len(claims) == 1 and claims[0].survey_id == sid, (sid, claims)
        return claims[0]

    def _iso(self, ts: float | None) -> str | None:
        from gateway.store import iso

        return None if ts is None else iso(ts, TZ)

    def recordings(self, claim: Any) -> dict[str, Any]:
        from gateway.attempts import rec_base, recording_files

        base = rec_base(claim.callback_id, datetime.now(TZ))
        files = recording_files(self.dialer.recordings_dir, base, reason=False)
        durations = {"mix": 74.2, "citizen": 74.2, "agent": 74.1}
        return {
            leg: {
                "path": str(p),
                "duration_s": durations[leg],
                "bytes": int(durations[leg] * 16000),
            }
            for leg, p in files.items()
        }

    async def finish(
        self, claim: Any, outcome: str, *, now_retry: bool = False, ivr_digit: str | None = None
    ) -> Any:
        """Store one attempt's result as the dialer does (gateway.attempts.attempt_result)."""
        from gateway.attempts import attempt_result
        from gateway.calls import TrackedCall

        t = time.time()
        call = TrackedCall(channel_id=claim.callback_id, ended=True, ended_at=t)
        recordings: dict[str, Any] = {}
        if outcome == "connected":
            call.answered, call.answered_at, call.connected_at = True, t - 80, t - 76
            call.hangup_cause, call.agent, call.agent_interface = "16", "agent1001", "PJSIP/1001"
            recordings = self.recordings(claim)
        elif outcome == "ivr_rated":
            call.answered, call.answered_at, call.hangup_cause = True, t - 30, "16"
            call.ivr_result = ivr_digit
        elif outcome == "busy":
            call.hangup_cause, call.originate_reason = "17", "5"
        elif outcome == "no_answer":
            call.hangup_cause, call.originate_reason = "19", "3"
        else:
            raise ValueError(outcome)
        settings = self.dialer_now if now_retry else self.dialer
        r = attempt_result(claim, call, recordings, settings, t, self._iso)
        assert r.outcome.value == outcome, (r.outcome, outcome)
        status = await self.cb.result(
            claim,
            r.next_state,
            r.payload,
            r.transition,
            retry_at=r.retry_at,
            asr_job=r.asr_job,
            rating=r.rating,
            next_kind=r.next_kind,
        )
        assert status == "stored", status
        return r

    # --- ASR ----------------------------------------------------------------------------
    async def asr_take(self, consumer: str = "asr-1") -> dict[str, tuple[str, Any, str]]:
        """The ASR worker reads new jobs and indexes each job's recording; survey id ->
        (entry id, job, raw job field)."""
        from asr import jobs
        from asr.worker import recording_of
        from gateway import streams
        from recordings.index import index_recording
        from recordings.naming import recording_files

        await streams.ensure_group(self.redis, jobs.JOBS, jobs.GROUP)
        out = {}
        for entry_id, fields in await streams.read(
            self.redis, jobs.JOBS, jobs.GROUP, consumer, count=100, block_ms=None
        ):
            job = jobs.parse_job(fields["job"])
            found = recording_of(job)
            assert found is not None
            base, _directory = found
            created = datetime.fromisoformat(job.recorded_at).timestamp()
            names = [n for n in recording_files(base) if not n.endswith("-reason.wav")]
            await index_recording(self.redis, base, job.survey_id, job.callback_id, names, created)
            out[job.survey_id] = (entry_id, job, fields["job"])
        return out

    async def asr_ack(self, entry_id: str) -> None:
        from asr import jobs

        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(jobs.JOBS, jobs.GROUP, entry_id)
            pipe.hdel(jobs.LAST_ERROR, entry_id)
            await pipe.execute()

    async def transcript(self, taken: tuple[str, Any, str], citizen_words: list[str]) -> str:
        """A finished transcription: the ``transcript`` event via minyi_transcript."""
        from asr import jobs
        from asr.transcript import LegTranscript, TranscriptResult, Utterance, Word, merge_timeline
        from gateway.store import iso
        from sms.understand import understand

        entry_id, job, _raw = taken

        def leg(speaker: str, words: list[str], start: float) -> LegTranscript:
            ws = tuple(
                Word(w, start + 0.6 * i, start + 0.6 * i + 0.5, 0.91) for i, w in enumerate(words)
            )
            return LegTranscript(speaker, "zh-CN", (Utterance(ws),), 74.2, 8000, 8000)

        legs = {
            "agent": leg("agent", ["您好", "这里", "是", "越城区", "公安分局", "回访"], 0.4),
            "citizen": leg("citizen", citizen_words, 5.0),
        }
        result = TranscriptResult(
            legs=legs,
            timeline=merge_timeline(legs.values()),
            model="vosk-model-small-cn-0.22",
            language="zh-CN",
            sample_rate=8000,
            audio_s=74.2,
            processing_s=6.8,
        )
        reading = understand(result.citizen_text)
        payload = jobs.transcript_payload(job, result, reading, attempt=1)
        outcome = await jobs.record_outcome(
            self.redis, job.survey_id, iso(time.time(), TZ), jobs.TRANSCRIPT, payload, job.job_id
        )
        await self.asr_ack(entry_id)
        return outcome


# --- the scenario -------------------------------------------------------------------------


async def wait_for(cond: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def group_idle(redis: aioredis.Redis, stream: str, group: str) -> bool:
    for g in await redis.xinfo_groups(stream):
        if g["name"] == group:
            return int(g["pending"]) == 0 and int(g.get("lag") or 0) == 0
    return False


async def phase1_sms(b: Builder) -> None:
    """Phase 1, SMS side: intake, sending, receipts, replies (delivered in phase 2)."""
    from sms.pdu import status_name

    # A receipt whose submit_sm_resp never comes: held now, an orphan by phase 4.
    await b.receipt(94, "f00d0001")
    b.info["first_held_at"] = time.monotonic()

    await b.delivered("L-OPTOUT-1", 2)
    await b.reply(2, "TD")
    b.expect("L-OPTOUT-1", "closed", "delivered, replied TD: opted out and closed")
    await b.intake("L-REJECTED-OPTOUT-1", 2)
    b.expect("L-REJECTED-OPTOUT-1", "rejected", "intake for an opted-out number (opted_out)")

    await b.delivered("L-DELIVERED-1", 3)
    b.expect("L-DELIVERED-1", "delivered", "1 part, final receipt DELIVRD")
    await b.intake("L-REJECTED-FREQ-1", 3)
    b.expect("L-REJECTED-FREQ-1", "rejected", "same number within the frequency cap (too_frequent)")

    now = datetime.now(TZ)
    release = now.replace(hour=8, minute=0, second=0, microsecond=0)
    if release <= now:
        release += timedelta(days=1)
    await b.intake("L-DEFERRED-1", 1, defer_at=release.timestamp() + 1234.5)
    b.expect("L-DEFERRED-1", "deferred", "quiet hours: in sms:deferred until the next 08:00")

    await b.intake("L-DELIVERED-2", 4, defer_at=time.time() + TINY_S)
    await asyncio.sleep(TINY_S + 0.2)
    assert await b.store.release_due() == 1
    for mid in await b.submit("L-DELIVERED-2"):
        await b.receipt(4, mid)
    b.expect("L-DELIVERED-2", "delivered", "deferred, released (quiet_hours_over), delivered")

    await b.intake("L-MULTIPART-1", 5)
    mids = await b.submit("L-MULTIPART-1", 3)
    await b.receipt(5, mids[1], "ENROUTE")  # an interim receipt first
    for mid in mids:
        await b.receipt(5, mid)
    b.expect("L-MULTIPART-1", "delivered", "3 parts, an interim receipt for part 2, 3 DELIVRD")

    await b.intake("L-SUBMITTED-1", 6)
    await b.submit("L-SUBMITTED-1", 2)
    b.expect("L-SUBMITTED-1", "submitted", "2 parts accepted (message ids stored), no receipt")

    await b.intake("L-UNDELIVERABLE-1", 7)
    mids = await b.submit("L-UNDELIVERABLE-1", 2)
    await b.receipt(7, mids[0])
    await b.receipt(7, mids[1], "UNDELIV", 5)
    b.expect("L-UNDELIVERABLE-1", "undeliverable", "2 parts: part 2 receipt UNDELIV err 005")

    await b.intake("L-UNDELIVERABLE-2", 8)
    await b.begin("L-UNDELIVERABLE-2")
    await b.store.part_failed("L-UNDELIVERABLE-2", 1, 1, status_name(0x0B), 0x0B)
    await b.ack_sms("L-UNDELIVERABLE-2")
    b.expect("L-UNDELIVERABLE-2", "undeliverable", "submit_sm refused: ESME_RINVDSTADR")

    await b.delivered("L-REPLIED-1", 9)
    await b.reply(
        9,
        "请问一下上次在派出所办理的户口迁移现在进度怎么样了，材料都已经交齐了，什么时候"
        "可以去拿新的户口本？另外孩子上学需要准备哪些证明材料，要到哪个窗口去开，周六上不上班？",
        ref=9,
    )
    b.expect("L-REPLIED-1", "replied", "a 2-part MO reply that is not a rating (rating unknown)")

    await b.delivered("L-CLOSED-1", 10)
    await b.reply(10, "1")
    b.expect("L-CLOSED-1", "closed", "replied 1: satisfied")

    await b.intake("L-CLOSED-2", 11)
    mids = await b.submit("L-CLOSED-2")
    await b.reply(11, "2 还行")
    await b.receipt(11, mids[0])  # the receipt after the reply: an sms.receipt event
    b.expect("L-CLOSED-2", "closed", "replied 2 before its receipt (then sms.receipt)")

    await b.intake("L-EXT-1", 12)
    job = await b.begin("L-EXT-1", ext=True)
    for mid in await b.submit("L-EXT-1", begin=False):
        await b.receipt(12, mid)
    await b.reply(12, "满意", ext=job.ext)
    b.expect("L-EXT-1", "closed", f"extension code {job.ext}; reply to {SOURCE_ADDR}{job.ext}")
    b.info["ext_codes"] = {"L-EXT-1": job.ext}

    await b.intake("L-EXT-2", 13)
    job = await b.begin("L-EXT-2", ext=True)
    b.info["ext2_mids"] = await b.submit("L-EXT-2", begin=False)  # its receipt: phase 5
    b.info["ext_codes"]["L-EXT-2"] = job.ext

    await b.intake("L-RESENT-1", 18)
    await b.begin("L-RESENT-1")  # the sender crashed after this: the entry stays pending
    for mid in await b.submit("L-RESENT-1", resent_part=1):  # attempt 2 after a restart
        await b.receipt(18, mid)
    b.expect("L-RESENT-1", "delivered", "send_begin twice (sms.resent), a part resent on the wire")

    await b.intake("L-CLOSED-UNDELIV-1", 17)
    await b.submit("L-CLOSED-UNDELIV-1", dlr_s=TINY_S, reply_s=TINY_S)
    await asyncio.sleep(TINY_S + 0.3)
    assert await b.store.sweep() == 2
    b.expect("L-CLOSED-UNDELIV-1", "closed", "no receipt (undeliverable), reply window over")


async def phase1_callbacks(b: Builder) -> None:
    """Phase 1, callbacks: IVR and agent calls, attempts, dispositions."""
    # IVR: a citizen who never replied gets the automated survey call and presses 1.
    await b.delivered("L-IVR-CLOSED-1", 30, reply_s=TINY_S)
    await asyncio.sleep(TINY_S + 0.3)
    assert await b.store.sweep(no_reply_ivr=True) == 1
    assert await b.promote() == 1
    claim = await b.claim("L-IVR-CLOSED-1", "ivr", owner="dialer-B")
    await b.finish(claim, "ivr_rated", ivr_digit="1")
    b.expect("L-IVR-CLOSED-1", "closed", "no reply, IVR callback, pressed 1 (rating satisfied)")

    # Agent callbacks: all answered "3"; the ready queue's order is the reply order.
    order = [
        ("L-CALLED-1", 24),
        ("L-CALLED-2", 25),
        ("L-DISPOSED-1", 26),
        ("L-TRANSCRIBED-1", 27),
        ("L-UNREACHABLE-1", 28),
        ("L-RECHECK-1", 29),
        ("L-CBRETRY-1", 21),
        ("L-CALLING-1", 23),
        ("L-CBREADY-1", 20),
    ]
    for sid, n in order:
        await b.unsatisfied(sid, n)
    await b.unsatisfied("L-UNROUTABLE-1", 22, unit="440100")
    assert await b.promote() == len(order)
    for sid in ("L-CALLED-1", "L-CALLED-2", "L-DISPOSED-1", "L-TRANSCRIBED-1"):
        await b.finish(await b.claim(sid), "connected")
    b.expect("L-CALLED-1", "called", "connected; its ASR job pending with a retryable error")
    b.expect("L-CALLED-2", "called", "connected; its ASR job dead-lettered (transcript.failed)")
    await b.finish(await b.claim("L-UNREACHABLE-1"), "busy", now_retry=True)
    for _ in range(2):
        assert await b.promote() == 1
        await b.finish(await b.claim("L-UNREACHABLE-1"), "no_answer", now_retry=True)
    b.expect("L-UNREACHABLE-1", "unreachable", "3 attempts: busy, no answer, no answer")
    await b.finish(await b.claim("L-RECHECK-1"), "connected")
    await b.finish(await b.claim("L-CBRETRY-1"), "no_answer")
    b.expect("L-CBRETRY-1", "callback_pending", "1 attempt, no answer: in cb:wait for 30 min")
    b.expect("L-CBREADY-1", "callback_pending", "promoted: in cb:ready:unit:330602")
    b.expect("L-UNROUTABLE-1", "callback_pending", "unit 440100: parked (callback.unroutable)")

    # The agent's verdict on L-DISPOSED-1 comes before its transcript.
    cid = (await b.store.get_survey("L-DISPOSED-1") or {})["cb_last"]
    disposition = {
        "reasons": ["attitude"],
        "note": "已核实，已批评教育",
        "upheld": True,
        "rating": "unsatisfied",
        "agent": "agent1001",
    }
    assert (await b.cb.disposition(cid, disposition))[0] == "stored"


async def phase1_asr(b: Builder) -> None:
    """Phase 1, ASR: the worker takes the five jobs; four end here, one in phase 4."""
    from asr import jobs
    from gateway.store import iso

    taken = await b.asr_take()
    names = {"L-CALLED-1", "L-CALLED-2", "L-DISPOSED-1", "L-TRANSCRIBED-1", "L-RECHECK-1"}
    assert set(taken) == names, taken
    # L-CALLED-1: the recording is not there yet: retryable, left pending.
    await b.redis.hset(
        jobs.LAST_ERROR,
        taken["L-CALLED-1"][0],
        jobs.dumps({"reason": "missing", "detail": "no such file", "leg": "citizen"}),
    )
    # L-CALLED-2: poison after 3 tries: dead letter and transcript.failed.
    entry_id, job, raw = taken["L-CALLED-2"]
    payload = jobs.failed_payload(
        job.job_id,
        "poison",
        "3 tries; last: worker_crashed: pool process died",
        callback_id=job.callback_id,
        recorded_at=job.recorded_at,
        attempt=3,
        last_reason="worker_crashed",
    )
    now_iso = iso(time.time(), TZ)
    dead = {
        "job": raw,
        "entry_id": entry_id,
        "reason": "poison",
        "detail": str(payload["detail"]),
        "attempts": "3",
        "at": now_iso,
    }
    out = await jobs.record_outcome(
        b.redis, job.survey_id, now_iso, jobs.TRANSCRIPT_FAILED, payload, job.job_id, dead
    )
    assert out == "recorded", out
    await b.asr_ack(entry_id)
    assert await b.transcript(taken["L-DISPOSED-1"], ["嗯", "三", "态度", "不好"]) == "recorded"
    b.expect("L-DISPOSED-1", "closed", "called, disposition, then its transcript (recorded)")
    assert await b.transcript(taken["L-RECHECK-1"], ["还", "可以", "吧"]) == "transcribed"
    cid = (await b.store.get_survey("L-RECHECK-1") or {})["cb_last"]
    verdict = await b.cb.disposition(cid, {"reasons": [], "note": "", "upheld": False})
    assert verdict[0] == "stored", verdict
    b.info["asr_pending"] = taken["L-TRANSCRIBED-1"]  # ends in phase 4


async def phase1_rest(b: Builder) -> None:
    """Phase 1, the rest: an IVR survey waiting, unmatched replies, deadlines passing."""
    await b.delivered("L-NOREPLY-IVR-1", 15, reply_s=TINY_S)
    await asyncio.sleep(TINY_S + 0.3)
    assert await b.store.sweep(no_reply_ivr=True) == 1
    assert await b.promote() == 1
    b.expect("L-NOREPLY-IVR-1", "callback_pending", "no reply, IVR callback, in cb:ready:ivr")

    # Replies that match no survey; a long reply of which only part 1 arrived.
    await b.reply(90, "请问你们是哪个单位")
    await b.reply(91, "TD")  # an opt-out from a number never surveyed
    await b.reply(
        92,
        "上周在你们大厅办理业务的时候排队排了两个多小时，窗口只开了一个，工作人员还一直"
        "在看手机，希望能改进一下，不然群众意见很大，我觉得这个问题应该好好重视一下，多开几个窗口",
        ref=92,
        only=1,
    )

    # Deadlines that pass meanwhile; swept in phase 4.
    await b.delivered("L-NOREPLY-1", 14, reply_s=TINY_S)
    await b.intake("L-NORECEIPT-1", 16)
    await b.submit("L-NORECEIPT-1", dlr_s=TINY_S)

    # Taken by the sender, no submit_sm_resp (yet): pending in the sms:queue group.
    await b.intake("L-QUEUED-1", 31)
    await b.begin("L-QUEUED-1")
    b.expect("L-QUEUED-1", "queued", "send_begin done, no submit_sm_resp: pending in group sms")


class Feed:
    """The webhook worker runs of phases 2 to 4, against the reference receiver."""

    def __init__(self, b: Builder) -> None:
        from gateway import keys
        from gateway.webhook_receiver import WebhookReceiver

        self.b = b
        self.redis = b.redis
        self.receiver = WebhookReceiver(SECRET)
        self.group = keys.WEBHOOK_GROUP.format(endpoint=ENDPOINT)
        self.due = keys.WEBHOOK_DUE.format(endpoint=ENDPOINT)
        self.dead = keys.WEBHOOK_DEAD.format(endpoint=ENDPOINT)
        self.failed_field = f"webhook:{ENDPOINT}:failed"

    def endpoint(self, **kw: Any) -> Any:
        from gateway.webhooks import WebhookEndpoint

        args: dict[str, Any] = {"timeout_s": 2.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.3}
        args.update(kw)
        return WebhookEndpoint(name=ENDPOINT, url=self.receiver.url, secret=SECRET, **args)

    async def run(self, ep: Any, until: Any, what: str) -> None:
        """Run a WebhookWorker until ``until()``, then stop it cleanly."""
        from gateway.webhooks import WebhookWorker

        w = WebhookWorker(self.redis, [ep], consumer=CONSUMER, stats_interval_s=0.1)
        task = asyncio.create_task(w.run())
        try:
            await wait_for(until, what)
        finally:
            await w.stop(grace_s=2.0)
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def all_delivered(self) -> bool:
        from gateway import keys

        idle = await group_idle(self.redis, keys.EVENTS, self.group)
        return idle and await self.redis.zcard(self.due) == 0

    async def failed(self) -> int:
        from gateway import keys

        return int(await self.redis.hget(keys.STATS, self.failed_field) or 0)

    async def phases(self) -> None:
        await self.receiver.start()
        try:
            # phase 2: everything so far is delivered
            await self.run(self.endpoint(), self.all_delivered, "phase 2 delivery")
            self.receiver.fail(500)
            await self.phase3()
            await self.phase4()
        finally:
            await self.receiver.close()

    async def phase3(self) -> None:
        """A dead letter: a tiny max_age and a receiver answering 500."""
        b = self.b
        payload = {"kind": "agent", "priority": 7, "note": "整改后二次回访", "work_order": "WO-42"}
        assert await b.cb.recheck("L-RECHECK-1", payload, "agent", 7) == ("stored", "recheck")
        b.expect(
            "L-RECHECK-1",
            "recheck",
            "closed by disposition, second callback (in cb:wait); "
            "its survey.recheck event is the endpoint's dead letter",
        )

        async def one_dead() -> bool:
            return await self.redis.xlen(self.dead) == 1 and await self.all_delivered()

        await self.run(self.endpoint(max_age_s=0.01), one_dead, "phase 3 dead letter")

    async def phase4(self) -> None:
        """Events waiting behind the failing receiver: each survey tried once, backed off."""
        from gateway import keys

        b = self.b
        b.expect("L-CALLING-1", "calling", "claimed by dialer-A (no heartbeat): in cb:active")
        await b.claim("L-CALLING-1")
        got = await b.transcript(
            b.info["asr_pending"], ["嗯", "三", "不", "满意", "等", "太", "久"]
        )
        assert got == "transcribed", got
        b.expect("L-TRANSCRIBED-1", "transcribed", "connected, transcript (survey.transcribed)")
        # the first held receipt is an orphan now, a second one is still held
        await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - b.info["first_held_at"])))
        await b.receipt(95, "f00d0002")
        assert await b.store.sweep(orphan_after_s=1.0) == 3  # orphan, no receipt, no reply
        b.expect("L-NOREPLY-1", "no_reply", "delivered, reply window over")
        b.expect("L-NORECEIPT-1", "undeliverable", "submitted, receipt deadline over (no_receipt)")
        await b.unsatisfied("L-CBPENDING-1", 19)
        b.expect(
            "L-CBPENDING-1",
            "callback_pending",
            "answered 3: in cb:wait, not yet promoted; none of its events delivered",
        )
        waiting = [
            "L-CALLING-1",
            "L-TRANSCRIBED-1",
            "L-NOREPLY-1",
            "L-NORECEIPT-1",
            "L-CBPENDING-1",
        ]
        before = await self.failed()

        async def each_failed_once() -> bool:
            if await self.failed() - before < len(waiting):
                return False
            return await group_idle(self.redis, keys.EVENTS, self.group)

        ep = self.endpoint(max_age_s=3 * 86400, backoff_initial_s=600, backoff_max_s=900)
        await self.run(ep, each_failed_once, "phase 4 failures")
        retry = await self.redis.hgetall(keys.WEBHOOK_RETRY.format(endpoint=ENDPOINT))
        assert sorted(retry) == sorted(waiting), retry


async def phase5_crashed_lease(b: Builder) -> None:
    """A webhook consumer (gw-2) took L-EXT-2's new event, leased the survey, crashed."""
    from gateway import keys, streams
    from gateway.webhook_intake import Intake
    from gateway.webhook_queue import EndpointQueue

    await b.receipt(13, b.info["ext2_mids"][0])
    b.expect(
        "L-EXT-2",
        "delivered",
        "extension code, delivered, open; its survey.delivered event is leased "
        "to webhook consumer gw-2, which crashed",
    )
    leased: list[Any] = []
    intake = Intake(
        b.redis,
        EndpointQueue(b.redis, ENDPOINT, owner="gw-2"),
        "gw-2",
        block_ms=100,
        read_count=100,
        claim_idle_s=60.0,
        lease_s=30.0,
        reserve=lambda: 1,
        start=lambda _n, heads: leased.extend(heads),
        on_scheduled=lambda: None,
    )
    group = keys.WEBHOOK_GROUP.format(endpoint=ENDPOINT)
    await intake.queue_entries(
        await streams.read(b.redis, keys.EVENTS, group, "gw-2", count=100, block_ms=None)
    )
    assert [h.sid for h in leased] == ["L-EXT-2"], leased


async def phase6_unread(b: Builder) -> None:
    """Work nobody has read yet; the dialers' liveness keys."""
    await b.intake("L-QUEUED-2", 32)
    b.expect(
        "L-QUEUED-2",
        "queued",
        "in sms:queue, not read by the sender; its events not read by the webhook group",
    )
    await b.reply(93, "你好", handle=False)  # a raw deliver_sm the inbound worker has not read
    # dialer-A, owner of L-CALLING-1's call, has no heartbeat: it died; dialer-B, which
    # dials on the Asterisk now, will adopt the call.
    await b.cb.heartbeat("dialer-B", 15)
    assert await b.cb.lease(PBX, "dialer-B", 15)


async def build(redis: aioredis.Redis) -> Builder:
    b = Builder(redis)
    await b.store.load()
    # phase 1: history, all of it delivered to the webhook receiver in phase 2
    await phase1_sms(b)
    await phase1_callbacks(b)
    await phase1_asr(b)
    await phase1_rest(b)
    # phases 2-4: delivered, a dead letter, events waiting after a 500
    await Feed(b).phases()
    await phase5_crashed_lease(b)
    await phase6_unread(b)
    for sid, st in b.expected.items():
        await b.check(sid, st)
    return b


# --- manifest ---------------------------------------------------------------------------------


async def stretch_ttls(redis: aioredis.Redis) -> dict[str, int]:
    """Give every key with a TTL under five years one of ten years; the TTLs as written."""
    out = {}
    for key in sorted(await redis.keys("*")):
        ttl = await redis.ttl(key)
        if 0 <= ttl < STRETCH_BELOW_S:
            out[key] = ttl
            await redis.expire(key, FIXTURE_TTL_S)
    return out


def _families() -> dict[str, str]:
    """keys.py constant -> its key pattern (groups excluded)."""
    from gateway import keys

    return {
        name: value
        for name, value in vars(keys).items()
        if name.isupper()
        and isinstance(value, str)
        and value.startswith(keys.PREFIX)
        and value != keys.PREFIX
    }


def _matches(pattern: str, key: str) -> bool:
    import re

    # A queue ("unit:330602") and an Asterisk ("host:port") have colons of their own.
    rx = "".join(
        (".+" if part in ("{queue}", "{pbx}") else "[^:]+")
        if part.startswith("{")
        else re.escape(part)
        for part in re.split(r"(\{[a-z_]+\})", pattern)
        if part
    )
    return re.fullmatch(rx, key) is not None


async def function_libraries(redis: aioredis.Redis) -> list[str]:
    """Names of the function libraries loaded (FUNCTION LIST; RESP2 flat pairs or maps)."""
    out = []
    for lib in await redis.function_list():
        if isinstance(lib, dict):
            out.append(lib["library_name"])
        else:
            pairs = dict(zip(lib[::2], lib[1::2], strict=True))
            out.append(pairs["library_name"])
    return sorted(out)


async def manifest(
    redis: aioredis.Redis, b: Builder, stretched: dict[str, int], head: str
) -> dict[str, Any]:
    from gateway import keys

    server = await redis.info("server")
    keyspace = {k: await redis.type(k) for k in sorted(await redis.keys("*"))}

    surveys: dict[str, Any] = {}
    for sid in sorted(b.expected):
        fields = await redis.hgetall(keys.SURVEY.format(survey_id=sid))
        events = await redis.lrange(keys.SURVEY_EVENTS.format(survey_id=sid), 0, -1)
        types = [json.loads(e)["type"] for e in events]
        assert fields["state"] == b.expected[sid]
        assert int(fields["seq"]) == len(events)
        transcripts = await redis.hkeys(f"{keys.SURVEY.format(survey_id=sid)}:transcripts")
        surveys[sid] = {
            "state": fields["state"],
            "what": b.notes[sid],
            "phone": fields["phone"],
            "events": len(events),
            "last_event_type": types[-1],
            "event_types": types,
            "fields": dict(sorted(fields.items())),
            "transcripts": sorted(transcripts),  # fields of minyi:survey:<id>:transcripts
        }

    ep = ENDPOINT
    wait_prefix = keys.WEBHOOK_WAIT.format(endpoint=ep, survey_id="")
    waiting = {}
    for k in keyspace:
        if k.startswith(wait_prefix):
            members = await redis.zrange(k, 0, -1, withscores=True)
            waiting[k[len(wait_prefix) :]] = [int(s) for _, s in members]
    delivered = {
        k: int(v)
        for k, v in sorted(
            (await redis.hgetall(keys.WEBHOOK_DELIVERED.format(endpoint=ep))).items()
        )
    }
    retry = {
        k: json.loads(v)
        for k, v in sorted((await redis.hgetall(keys.WEBHOOK_RETRY.format(endpoint=ep))).items())
    }
    leases = dict(sorted((await redis.hgetall(keys.WEBHOOK_LEASE.format(endpoint=ep))).items()))
    due = {
        m: round(s - time.time(), 1)
        for m, s in await redis.zrange(keys.WEBHOOK_DUE.format(endpoint=ep), 0, -1, withscores=True)
    }
    dead = []
    for eid, f in await redis.xrange(keys.WEBHOOK_DEAD.format(endpoint=ep)):
        ev = json.loads(f["event"])
        dead.append({"id": eid, "sid": f["sid"], "seq": int(f["seq"]), "type": ev["type"],
                     "error": f["error"], "attempts": int(f["attempts"])})  # fmt: skip
    group = keys.WEBHOOK_GROUP.format(endpoint=ep)
    groups = {g["name"]: g for g in await redis.xinfo_groups(keys.EVENTS)}
    last_read = groups[group]["last-delivered-id"]
    unread: dict[str, list[int]] = {}
    for _eid, f in await redis.xrange(keys.EVENTS, "(" + last_read, "+"):
        unread.setdefault(f["sid"], []).append(int(f["seq"]))

    async def stream_info(stream: str) -> dict[str, Any]:
        out: dict[str, Any] = {"length": await redis.xlen(stream), "groups": {}}
        with contextlib.suppress(Exception):
            for g in await redis.xinfo_groups(stream):
                pend = await redis.xpending_range(stream, g["name"], "-", "+", 1000)
                out["groups"][g["name"]] = {
                    "pending": int(g["pending"]),
                    "lag": g.get("lag"),
                    "consumers": sorted({p["consumer"] for p in pend}),
                    "pending_entries": [p["message_id"] for p in pend],
                }
        return out

    streams_info = {k: await stream_info(k) for k, t in keyspace.items() if t == "stream"}
    sms_pending = [
        (await redis.xrange(keys.SMS_QUEUE, e, e))[0][1]["sid"]
        for e in streams_info[keys.SMS_QUEUE]["groups"][keys.SMS_GROUP]["pending_entries"]
    ]
    sms_unread = [
        f["sid"]
        for _e, f in await redis.xrange(
            keys.SMS_QUEUE,
            "(" + next(g["last-delivered-id"] for g in await redis.xinfo_groups(keys.SMS_QUEUE)),
            "+",
        )
    ]

    families: dict[str, list[str]] = {}
    for name, pattern in _families().items():
        families[name] = [k for k in keyspace if _matches(pattern, k)]
    covered = {k for ks in families.values() for k in ks}
    extra = sorted(k for k in keyspace if k not in covered)

    functions = await function_libraries(redis)
    return {
        "commit": COMMIT,
        "commit_full": head,
        "made_at": datetime.now(TZ).isoformat(timespec="seconds"),
        "made_by": "tests/data/legacy/make_dump.py",
        "redis_server_version": server["redis_version"],
        "rdb": "RDB only (no AOF); save the file as dump.rdb and start redis-server with "
        "--dir <its folder> --dbfilename dump.rdb",
        "timezone": str(TZ),
        "function_libraries": functions,
        "fixture_ttl_s": FIXTURE_TTL_S,
        "ttl_stretched": stretched,
        "surveys": surveys,
        "webhook": {
            "endpoint": ep,
            "group": group,
            "waiting": dict(sorted(waiting.items())),
            "delivered": delivered,
            "dead_letters": len(dead),
            "dead_letter_entries": dead,
            "retry": retry,
            "leases": leases,
            "due_in_s_at_dump": due,
            "stream_unread": unread,
            "notes": "waiting: wait zset seqs per survey; delivered: high-water marks "
            "(delivered or dead-lettered); stream_unread: events entries after the group's "
            "last-delivered id, per survey id ('' = no survey).",
        },
        "sms_queue": {"pending_in_group": sms_pending, "unread": sms_unread},
        "ext_codes": b.info["ext_codes"],
        "callbacks": {
            "wait": dict(await redis.zrange(keys.CB_WAIT, 0, -1, withscores=True)),
            "ready": {
                k: await redis.zrange(k, 0, -1) for k in keyspace if k.startswith("minyi:cb:ready:")
            },
            "active": {k: json.loads(v) for k, v in (await redis.hgetall(keys.CB_ACTIVE)).items()},
        },
        "optout": sorted(await redis.smembers(keys.OPTOUT)),
        "stats": {k: int(v) for k, v in sorted((await redis.hgetall(keys.STATS)).items())},
        "streams": streams_info,
        "key_count": len(keyspace),
        "keys": keyspace,
        "key_ttls_s": {k: await redis.ttl(k) for k in keyspace if await redis.ttl(k) >= 0},
        "key_families": families,
        "key_families_empty": sorted(name for name, ks in families.items() if not ks),
        "keys_outside_keys_py": extra,
    }


# --- verification -------------------------------------------------------------------------------


async def verify(dump: Path, man: dict[str, Any]) -> None:
    """Load the dump into a fresh redis-server and compare it with the manifest."""
    with tempfile.TemporaryDirectory(prefix="legacy-verify-") as tmp:
        shutil.copy(dump, Path(tmp) / "dump.rdb")
        server = RedisProc(Path(tmp))
        try:
            r = aioredis.Redis.from_url(server.url, decode_responses=True)
            try:
                loaded = {k: await r.type(k) for k in await r.keys("*")}
                missing = sorted(set(man["keys"]) - set(loaded))
                extra = sorted(set(loaded) - set(man["keys"]))
                wrong = sorted(
                    k for k in man["keys"] if k in loaded and loaded[k] != man["keys"][k]
                )
                assert not (missing or extra or wrong), (missing, extra, wrong)
                for sid, s in man["surveys"].items():
                    fields = await r.hgetall(f"minyi:survey:{sid}")
                    assert fields == s["fields"], sid
                    assert await r.llen(f"minyi:survey:{sid}:events") == s["events"], sid
                libs = await function_libraries(r)
                assert libs == man["function_libraries"], libs
            finally:
                await r.aclose()
        finally:
            server.stop()
    print(f"verified: {len(man['keys'])} keys, {len(man['surveys'])} surveys loaded from {dump}")


# --- main -----------------------------------------------------------------------------------------


async def make(workdir: Path, head: str) -> dict[str, Any]:
    """Build the keyspace on a redis-server in ``workdir``, SAVE it there; the manifest."""
    server = RedisProc(workdir)
    try:
        redis = aioredis.Redis.from_url(server.url, decode_responses=True)
        try:
            assert await redis.dbsize() == 0
            b = await build(redis)
            stretched = await stretch_ttls(redis)
            man = await manifest(redis, b, stretched, head)
            await redis.save()
        finally:
            await redis.aclose()
    finally:
        server.stop()
    return man


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder for dump.rdb and manifest.json (default: this script's folder)",
    )
    ap.add_argument("--allow-other-commit", action="store_true")
    args = ap.parse_args()
    head = _check_old_code()
    if not head.startswith(COMMIT) and not args.allow_other_commit:
        raise SystemExit(
            f"the gateway package is imported from a tree at {head or 'an unknown commit'}, "
            f"not {COMMIT}: run this with the venv of a checkout of {COMMIT} "
            "(or pass --allow-other-commit)"
        )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="legacy-redis-") as tmp:
        man = asyncio.run(make(Path(tmp), head))
        shutil.copy(Path(tmp) / "dump.rdb", out / "dump.rdb")
    (out / "manifest.json").write_text(
        json.dumps(man, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    size = (out / "dump.rdb").stat().st_size
    print(f"wrote {out / 'dump.rdb'} ({size} bytes) and {out / 'manifest.json'}")
    asyncio.run(verify(out / "dump.rdb", man))


if __name__ == "__main__":
    main()
