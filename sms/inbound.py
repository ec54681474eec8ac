"""The inbound worker: messages from the SMS center (SMPP deliver_sm, CMPP_DELIVER),
stored raw before they were acknowledged, are read here as delivery receipts or
citizens' replies.

`store_pdu` is every bind's sink: it runs before the acknowledgement is sent, so once
the SMS center has it the message is in Redis. An entry holds `bind`, `smsc`, `pdu`
(hex) and `at`; a CMPP entry also `proto` ("cmpp2" / "cmpp3"). Entries without
`proto` are SMPP: the format of entries stored before CMPP existed is unchanged.
`Inbound.run` reads the stream, and an entry is acknowledged only after its effect is
stored; a message that cannot be read is kept on the orphan stream and reported,
never dropped. From the decoded receipt or reply on, the path is the same for every
protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway import lifecycle, logs
from gateway.config import Settings, SurveySettings
from gateway.privacy import mask_phone
from gateway.store import keys, library, streams
from gateway.store.surveys import ReplyCourse, Store
from sms.cmpp.inbound import read_deliver
from sms.dlr import Receipt, normalise_message_id, parse_receipt, stored_form
from sms.mo import MoMessage, assemble, decode_short_message
from sms.phone import from_smpp_address
from sms.smpp.codec import decode_all
from sms.smpp.constants import ESM_CLASS_DELIVERY_RECEIPT, ESM_CLASS_TYPE_MASK
from sms.smpp.pdu import DeliverSm
from sms.understand import Confidence, Rating, Understanding, understand

log = logs.logger(__name__)

# Receipts waiting for their submit_sm_resp are held this long before they count as
# orphans (a resp is normally stored within milliseconds).
HELD_RECEIPT_TTL_S = 3600


#: The protocol of an entry without a `proto` field (every entry stored before CMPP).
SMPP: Final = "smpp"


async def store_pdu(store: Store, bind: str, smsc: str, pdu: bytes, protocol: str = SMPP) -> None:
    """Store one raw inbound message (hex) on the inbound stream (pipelined with
    whatever else this process sends to Redis in the same tick)."""
    tagged: tuple[str, ...] = () if protocol == SMPP else ("proto", protocol)
    await store.commands.execute(
        "XADD",
        keys.INBOUND,
        "*",
        "bind",
        bind,
        "smsc",
        smsc,
        "pdu",
        pdu.hex(),
        "at",
        f"{time.time():.3f}",
        *tagged,
    )


class Inbound:
    """Turns stored deliver_sm PDUs into receipts and replies."""

    def __init__(
        self, redis: aioredis.Redis, store: Store, settings: Settings, *, consumer: str
    ) -> None:
        self.redis = redis
        self.store = store
        self.settings = settings
        self.consumer = consumer
        self.binds = {b.name: b for b in settings.sms.binds}
        self._stopping = asyncio.Event()
        self.counts: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Read and handle inbound PDUs until ``stop`` is set (the entries in hand are
        finished first); Redis outages are waited out."""
        self._stopping = stop
        await lifecycle.outlast(self._run_once, stop, what="sms inbound", log=log)

    async def _run_once(self) -> None:
        await streams.ensure_group(self.redis, keys.INBOUND, keys.INBOUND_GROUP)
        await self._handle_batch(
            await streams.pending(self.redis, keys.INBOUND, keys.INBOUND_GROUP, self.consumer)
        )
        # Claims run on a timer (streams.claim_every_s): a dead process's entries are
        # taken over within claim_idle_s and a few seconds, however many there are.
        loop = asyncio.get_running_loop()
        every = streams.claim_every_s(self.settings.claim_idle_s)
        next_claim = loop.time() + every
        while not self._stopping.is_set():
            await self._handle_batch(
                await streams.read(
                    self.redis, keys.INBOUND, keys.INBOUND_GROUP, self.consumer, count=200
                )
            )
            if loop.time() >= next_claim:
                next_claim = loop.time() + every
                await self._maintenance()

    async def _handle_batch(self, entries: list[streams.Entry]) -> None:
        # Concurrently: the store sends their function calls as one pipeline. Each
        # entry is acknowledged only after its effect is stored.
        if not entries:
            return
        await asyncio.gather(*(self._handle_entry(eid, fields) for eid, fields in entries))
        await self.redis.xack(keys.INBOUND, keys.INBOUND_GROUP, *(eid for eid, _ in entries))

    async def _maintenance(self) -> None:
        await self._handle_batch(
            await streams.claim_abandoned(
                self.redis,
                keys.INBOUND,
                keys.INBOUND_GROUP,
                self.consumer,
                int(self.settings.claim_idle_s * 1000),
            )
        )
        timeout = self.settings.sms.mo_reassembly_timeout_s
        for key, parts in await self.store.mo_flush(timeout):
            # key = minyi:mo:{smsc}:{source}:{ref}:{total}
            *_, smsc, source, _ref, total = key.split(":")
            text, missing = assemble(parts, int(total))
            await self._reply(
                smsc, "", source, "", text, {"incomplete": True, "missing_parts": missing}
            )

    async def _handle_entry(self, entry_id: str, fields: Mapping[str, str] | None) -> None:
        """Handle one entry (the caller acknowledges it)."""
        if not fields:
            return
        try:
            await self.handle(fields)
        except ResponseError as exc:
            if not library.script_fault(exc):
                raise  # Redis refused (OOM, read-only...): an outage, waited out
            # The store refused this entry: the same call would fail forever. Keep it,
            # with Redis's message, and let the stream move on.
            log.error(
                "sms inbound entry %s refused by the store: %s", entry_id, lifecycle.describe(exc)
            )
            await self._keep(entry_id, fields, exc)
        except RedisError:
            raise  # not acknowledged: handled again after reconnect
        except Exception as exc:
            # A bug or a PDU we cannot read must not block the stream: keep it.
            log.exception("sms inbound entry %s could not be handled", entry_id)
            await self._keep(entry_id, fields, exc)

    async def _keep(self, entry_id: str, fields: Mapping[str, str], exc: Exception) -> None:
        """Keep an entry that cannot be handled on the orphan stream, with its error."""
        kept: dict[Any, Any] = {**fields, "error": lifecycle.describe(exc)[:500]}
        await self.redis.xadd(keys.DLR_ORPHANS, kept, maxlen=1_000_000)
        self._count("unhandled")

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def handle(self, fields: Mapping[str, str]) -> None:
        """Handle one stored inbound message, of whatever protocol."""
        raw = bytes.fromhex(fields["pdu"])
        bind_name, smsc = fields["bind"], fields["smsc"]
        protocol = fields.get("proto", SMPP)
        alphabet = self.settings.sms.default_alphabet
        if protocol == SMPP:
            decoded = self._read_deliver_sm(raw)
        else:
            decoded = read_deliver(raw, protocol, alphabet)
        if isinstance(decoded, Receipt):
            await self._receipt(bind_name, smsc, decoded, protocol)
            return
        fragment = decoded.fragment
        meta: dict[str, Any] = {"bind": bind_name}
        if fragment.concat is not None and fragment.concat.total > 1:
            c = fragment.concat
            # Keyed by the normalised number (parts may come with and without "86") and
            # by the reference width (an 8-bit and a 16-bit ref 7 are different messages).
            source = from_smpp_address(decoded.source) or decoded.source
            key = keys.MO_PARTS.format(
                smsc=smsc, source=source, ref=f"{c.ref_bits}-{c.ref}", total=c.total
            )
            parts = await self.store.mo_part(
                key, c.seq, fragment.text, c.total, self.settings.sms.mo_reassembly_timeout_s * 2
            )
            if parts is None:
                self._count("mo_part")
                return
            text, missing = assemble(parts, c.total)
            meta["parts"] = c.total
            if missing:
                meta["missing_parts"] = missing
        else:
            text = fragment.text
        await self._reply(smsc, bind_name, decoded.source, decoded.dest, text, meta)

    def _read_deliver_sm(self, raw: bytes) -> Receipt | MoMessage:
        decoded = decode_all(raw)[0].body
        if not isinstance(decoded, DeliverSm):
            raise ValueError(f"not a deliver_sm: {type(decoded).__name__}")
        tlvs = dict(decoded.tlvs)
        if decoded.esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_DELIVERY_RECEIPT:
            receipt = parse_receipt(decoded.short_message.decode("latin-1"), tlvs)
            if receipt is None:
                raise ValueError("delivery receipt without a message id")
            return receipt
        fragment = decode_short_message(
            decoded.data_coding,
            decoded.esm_class,
            decoded.short_message,
            tlvs,
            default_alphabet=self.settings.sms.default_alphabet,
        )
        return MoMessage(decoded.source_addr, decoded.dest_addr, fragment)

    async def _receipt(self, bind_name: str, smsc: str, receipt: Receipt, protocol: str) -> None:
        bind = self.binds.get(bind_name)
        if bind is not None:
            base = bind.dlr_id_base
        else:  # a bind since removed from the config: its protocol's own spelling
            base = "text" if protocol == SMPP else "dec"
        key = normalise_message_id(receipt.message_id, base)
        outcome, _sid = await self.store.receipt(
            smsc, key, stored_form(receipt), HELD_RECEIPT_TTL_S
        )
        self._count(f"receipt_{outcome}")

    async def _reply(
        self, smsc: str, bind: str, source: str, dest: str, text: str, meta: dict[str, Any]
    ) -> None:
        s = self.settings
        phone = from_smpp_address(source)
        understanding = understand(text)
        payload: dict[str, Any] = {
            "text": text,
            "understanding": understanding.to_json(),
            "to": dest,
            **meta,
        }
        if phone is None:
            payload["from"] = source
            await self.store.unmatched(payload, source, False)
            self._count("reply_unmatched")
            return
        ext = ""
        ours = s.sms.source_of(bind) if bind else s.sms.source_addr
        if s.sms.extension_digits and dest.startswith(ours):
            ext = dest[len(ours) :][: s.sms.extension_digits]
        sid, how = await self.store.find_open_survey(phone, ext, s.surveys.reply_window_s)
        rating = understanding.rating.value
        if sid is not None:
            payload["matched_by"] = how
            outcome, _prev = await self.store.reply(
                sid, payload, rating, understanding.opt_out, phone, course(understanding, s.surveys)
            )
            if outcome != "late":
                log.info(
                    "sms reply survey=%s from=%s rating=%s opt_out=%s outcome=%s",
                    sid,
                    mask_phone(phone),
                    rating,
                    understanding.opt_out,
                    outcome,
                )
                self._count("reply")
                return
            payload["late_for_survey_id"] = sid
        payload["phone"] = phone
        await self.store.unmatched(payload, phone, understanding.opt_out)
        log.info("sms reply unmatched from=%s rating=%s", mask_phone(phone), rating)
        self._count("reply_unmatched")


def course(reading: Understanding, surveys: SurveySettings) -> ReplyCourse:
    """How a reply moves its survey on ([surveys] callback_on, clarify_template).

    A satisfied or basically satisfied reading the reader is unsure of (`unclear`) is
    no rating yet: like an unknown one it is worth the one clarifying SMS
    (`Understanding.clarify`) rather than closing the survey. An unsatisfied reading
    always counts: its callback is what a doubt would ask for anyway.
    """
    positive_unsure = (
        reading.rating in (Rating.SATISFIED, Rating.BASICALLY_SATISFIED)
        and reading.confidence is Confidence.UNCLEAR
    )
    if reading.rating is Rating.UNKNOWN or positive_unsure:
        kind = "unclear" if reading.clarify else "none"
    else:
        kind = "rated"
    return ReplyCourse(
        course=kind,
        callback=reading.rating.value in surveys.callback_on,
        clarify_window_s=surveys.clarify_window_s if surveys.clarify_template else 0.0,
        unclear_callback="unclear" in surveys.callback_on,
    )
