"""Typed access to the callback functions of the Redis library (gateway/store/lua/callbacks.lua)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.store import keys, library
from gateway.store.streams import text
from gateway.store.surveys import Store, iso, json_text

# A callback id stays resolvable (for the agent's disposition) this long.
CALLBACK_ID_TTL_S = 30 * 86400
# An agent's desk shows their last call (after a reload) this long.
DESK_CALL_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Claim:
    """A callback taken to be dialled now."""

    survey_id: str
    callback_id: str
    attempt: int
    phone: str
    kind: str  # "agent" | "ivr"
    unit: str
    origin: str = "callback_pending"  # or "recheck": the state it was claimed from


class CallbackStore:
    """The dialer's and the API's view of callbacks in Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis = store.redis

    def _now(self) -> tuple[float, str]:
        ts = time.time()
        return ts, iso(ts, self.store.tz)

    async def promote(self, units: tuple[str, ...], default_unit: str, limit: int = 500) -> int:
        """Move due callbacks onto their unit queue's ready list; how many moved."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_cb_promote", limit, now_iso, default_unit, *units
        )
        return int(r)

    async def claim(self, queue: str, callback_ids: list[str], owner: str) -> list[Claim]:
        """Take up to ``len(callback_ids)`` callbacks of ``queue`` (state -> calling)."""
        if not callback_ids:
            return []
        _ts, now_iso = self._now()
        flat = await self.store.commands.fcall(
            "minyi_cb_claim", queue, now_iso, owner, CALLBACK_ID_TTL_S, *callback_ids
        )
        out = []
        for i in range(0, len(flat), 7):
            sid, cid, attempt, phone, kind, unit, origin = (text(v) for v in flat[i : i + 7])
            out.append(Claim(sid, cid, int(attempt), phone, kind, unit, origin))
        return out

    async def result(
        self,
        claim: Claim,
        next_state: str,
        attempt_payload: dict[str, Any],
        transition_payload: dict[str, Any],
        *,
        retry_at: float | None = None,
        asr_job: dict[str, Any] | None = None,
        rating: str = "",
        uncount: bool = False,
        next_kind: str = "",
    ) -> str:
        """Store one attempt's outcome and the survey's next state; "stored" or
        "duplicate" (already stored by someone else)."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_cb_result",
            claim.survey_id,
            claim.callback_id,
            now_iso,
            next_state,
            json_text(attempt_payload),
            json_text(transition_payload),
            "" if retry_at is None else f"{retry_at:.3f}",
            "" if asr_job is None else json_text(asr_job),
            rating,
            "1" if uncount else "0",
            next_kind,
        )
        return text(r)

    async def disposition(self, callback_id: str, payload: dict[str, Any]) -> tuple[str, str, str]:
        """(status, survey id, state); see minyi_cb_disposition."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_cb_disposition", callback_id, now_iso, json_text(payload)
        )
        status, sid, state = (text(v) for v in r)
        return status, sid, state

    async def recheck(
        self, survey_id: str, payload: dict[str, Any], kind: str, priority: int
    ) -> tuple[str, str]:
        """(status, state); see minyi_cb_recheck."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_cb_recheck", survey_id, now_iso, json_text(payload), kind, priority
        )
        status, state = (text(v) for v in r)
        return status, state

    async def desk_call(self, kind: str, callback_id: str, agent: str) -> str:
        """Tell the agent's desk that they took the callback (``kind`` "pop", on
        AgentConnect) or that its call ended ("ended"); the survey id, "" if the
        callback is unknown. See minyi_desk_call."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_desk_call", kind, callback_id, agent, now_iso, DESK_CALL_TTL_S
        )
        return text(r)

    async def agent_state(self, agent: str, state: str, payload: dict[str, Any]) -> int:
        """Record an agent's new state and put ``agent.state`` on the feed; the event's
        seq, or 0 when the agent was already in that state (see minyi_agent_state)."""
        _ts, now_iso = self._now()
        r = await self.store.commands.fcall(
            "minyi_agent_state", agent, now_iso, state, json_text(payload)
        )
        return int(r)

    async def agent_states(self) -> dict[str, dict[str, Any]]:
        """Every agent's last recorded state: name -> {agent, state, from, since, units,
        interface, reason} (what the last ``agent.state`` event of each said)."""
        return await self._json_hash(keys.AGENTS)

    async def active(self) -> dict[str, dict[str, Any]]:
        """Calls being dialled or talked right now: callback id -> claim record."""
        return await self._json_hash(keys.CB_ACTIVE)

    async def _json_hash(self, key: str) -> dict[str, dict[str, Any]]:
        """A hash of JSON records, field -> decoded record (one that does not decode is
        left out: a reader never fails on a bad record)."""
        out = {}
        for k, v in (await self.redis.hgetall(key)).items():
            try:
                out[text(k)] = json.loads(v)
            except ValueError:
                continue
        return out

    async def heartbeat(self, owner: str, ttl_s: int) -> None:
        await self.redis.set(keys.DIALER_OWNER.format(owner=owner), "1", ex=ttl_s)

    async def forget_owner(self, owner: str) -> None:
        """This dialer no longer follows its calls: others may adopt them at once."""
        await self.redis.delete(keys.DIALER_OWNER.format(owner=owner))

    async def lease(self, pbx: str, owner: str, ttl_s: int) -> bool:
        """Take or keep the right to dial on Asterisk ``pbx``; True while it is ours."""
        r = await library.fcall(self.redis, "minyi_dialer_lease", pbx, owner, ttl_s)
        return bool(int(r))

    async def release_lease(self, pbx: str, owner: str) -> None:
        """Hand the lease back on a clean stop (a standby takes over at once)."""
        await library.fcall(self.redis, "minyi_dialer_lease", pbx, owner, 0)

    async def owner_alive(self, owner: str) -> bool:
        return bool(await self.redis.exists(keys.DIALER_OWNER.format(owner=owner)))


def claim_from_active(callback_id: str, record: dict[str, Any]) -> Claim:
    """A Claim rebuilt from a cb:active record (recovery after a restart)."""
    return Claim(
        survey_id=str(record.get("sid", "")),
        callback_id=callback_id,
        attempt=int(record.get("attempt", 0)),
        phone="",
        kind=str(record.get("kind", "agent")),
        unit="",
        origin=str(record.get("origin", "callback_pending")),
    )
