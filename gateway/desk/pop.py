"""The screen pop: what an agent sees of the citizen on the line, from the survey's record
and its event history (pure: no I/O, tested without a loop).

The citizen's full number is shown only to the agent of the call (``full_number``);
everything else a desk or board shows of a number goes through
:func:`gateway.privacy.mask_phone`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.privacy import mask_phone
from gateway.store.events import Event

RATING_NAMES = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "unknown": "未识别",
}
OUTCOME_NAMES = {
    "connected": "已接通",
    "no_agent": "无坐席接听",
    "abandoned": "接通前挂断",
    "no_answer": "无人接听",
    "busy": "占线",
    "rejected": "拒接",
    "invalid_number": "空号",
    "failed": "呼叫失败",
    "ivr_rated": "语音按键评价",
    "ivr_no_input": "语音无按键",
    "lost": "结果未知",
}
STATE_NAMES = {
    "calling": "通话中",
    "called": "待填写处理结果",
    "transcribed": "待填写处理结果",
    "closed": "已办结",
    "recheck": "二次回访",
    "callback_pending": "等待回访",
    "unreachable": "联系不上",
}


@dataclass(frozen=True)
class Reply:
    """The citizen's SMS reply and how it was read."""

    text: str
    rating: str
    reasons: tuple[str, ...]
    explanation: tuple[str, ...]
    cues: tuple[str, ...]
    hint: str | None
    at: str
    revised_to: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One earlier callback attempt."""

    at: str
    outcome: str
    agent: str
    attempt: int


@dataclass(frozen=True)
class Card:
    """Everything the pop shows; strings are plain text (the page escapes them)."""

    callback_id: str
    survey_id: str
    citizen: str
    service: str
    unit: str
    officer: str
    occurred_at: str
    sms_text: str | None
    state: str
    reply: Reply | None
    attempts: tuple[Attempt, ...] = ()
    work_order: str | None = None
    note: str | None = None
    connected_at: str = ""
    ended_at: str = ""
    disposition: Mapping[str, Any] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ready_for_disposition(self) -> bool:
        """The call is over and no verdict is stored yet (minyi_cb_disposition's rule)."""
        return self.state in ("called", "transcribed") and self.disposition is None

    @property
    def second_callback(self) -> bool:
        return self.work_order is not None or self.note is not None


def local_time(text: str, tz: ZoneInfo) -> str:
    """An ISO time as the people read it: 12月2日 16:05 (the text itself if unparsable)."""
    try:
        t = datetime.fromisoformat(text).astimezone(tz)
    except (ValueError, OverflowError):
        return text
    return f"{t.month}月{t.day}日 {t.hour:02d}:{t.minute:02d}"


def _reply(events: Sequence[Event], tz: ZoneInfo) -> Reply | None:
    first: Reply | None = None
    revised: str | None = None
    for e in events:
        if e.type == "survey.replied" and first is None:
            u = e.payload.get("understanding") or {}
            first = Reply(
                text=str(e.payload.get("text", "")),
                rating=str(u.get("rating", "unknown")),
                reasons=tuple(str(r) for r in u.get("reasons") or ()),
                explanation=tuple(str(x) for x in u.get("explanation") or ()),
                cues=tuple(str(c) for c in u.get("cues") or ()),
                hint=str(u["hint"]) if u.get("hint") else None,
                at=local_time(e.time, tz),
            )
        elif e.type == "survey.revised":
            revised = str(e.payload.get("rating", "")) or None
    if first is not None and revised is not None:
        return Reply(**{**first.__dict__, "revised_to": revised})
    return first


def card(
    survey: Mapping[str, str],
    events: Sequence[Event],
    callback_id: str,
    *,
    tz: ZoneInfo,
    full_number: bool,
    service_names: Mapping[str, str],
    unit_names: Mapping[str, str],
    sms_text: Callable[[Mapping[str, str]], str | None],
) -> Card:
    """The pop of ``callback_id`` for the survey ``survey`` (its hash) and its events."""
    phone = survey.get("phone", "")
    attempts: list[Attempt] = []
    work_order = note = None
    disposition: Mapping[str, Any] | None = None
    connected_at = ended_at = ""
    for e in events:
        p = e.payload
        if e.type == "callback.attempt":
            if p.get("callback_id") == callback_id:
                connected_at = local_time(str(p.get("connected_at") or ""), tz)
                ended_at = str(p.get("ended_at") or "")
                continue
            attempts.append(
                Attempt(
                    at=local_time(e.time, tz),
                    outcome=str(p.get("outcome", "")),
                    agent=str(p.get("agent") or ""),
                    attempt=int(p.get("attempt") or 0),
                )
            )
        elif e.type == "survey.recheck":
            work_order = str(p["work_order"]) if p.get("work_order") else None
            note = str(p.get("note") or "") or None
        elif e.type == "callback.disposition" and p.get("callback_id") == callback_id:
            disposition = p
    unit = survey.get("unit_code", "")
    service = survey.get("service_type", "")
    return Card(
        callback_id=callback_id,
        survey_id=survey.get("id", ""),
        citizen=phone if full_number else mask_phone(phone),
        service=service_names.get(service, service),
        unit=f"{unit_names[unit]}（{unit}）" if unit in unit_names else unit,
        officer=survey.get("officer_id", ""),
        occurred_at=local_time(survey.get("occurred_at", ""), tz),
        sms_text=sms_text(survey),
        state=survey.get("state", ""),
        reply=_reply(events, tz),
        attempts=tuple(attempts),
        work_order=work_order,
        note=note,
        connected_at=connected_at,
        ended_at=ended_at,
        disposition=disposition,
    )
