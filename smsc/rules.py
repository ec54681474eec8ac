"""What the SMSC simulator does with a message: the knobs and the rules.

Nothing here does I/O. `Behaviour` is the knob board (message-id styles, receipts,
throttling, failure switches, per-destination outcomes, citizens' auto-replies);
`apply_changes` takes them from Python or JSON; the functions pick the rule for a
message and render its ids.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from sms.smpp.constants import CommandStatus
from smsc.messages import RECEIPT_STATES, DlrMode, Encoding, Split

IdFormat = Literal["hex", "dec", "uuid"]


def _check_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise ValueError(f"bad pattern {pattern!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """What happens to messages whose destination matches `pattern` (re.search).

    `stat` is the Appendix B word in the receipt; `dlr=False` means no receipt ever
    comes; `lose_parts` drops the receipt of those part numbers of a concatenated
    message; `delay` overrides the behaviour's receipt delay.
    """

    pattern: str
    stat: str = "DELIVRD"
    err: int = 0
    dlr: bool = True
    lose_parts: tuple[int, ...] = ()
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.stat not in RECEIPT_STATES:
            raise ValueError(f"stat must be one of {sorted(RECEIPT_STATES)}: {self.stat!r}")
        _check_pattern(self.pattern)


@dataclass(frozen=True, slots=True)
class RejectRule:
    """submit_sm whose `field` ("dest" or "source") matches `pattern` get `status`."""

    pattern: str
    status: int = CommandStatus.ESME_RINVDSTADR
    field: Literal["dest", "source"] = "dest"

    def __post_init__(self) -> None:
        if self.field not in ("dest", "source"):
            raise ValueError(f"field must be 'dest' or 'source': {self.field!r}")
        _check_pattern(self.pattern)


@dataclass(frozen=True, slots=True)
class AutoReply:
    """Citizens who answer: after `delay`, the recipient of a delivered message replies
    with `choose(destination)`; None means this citizen stays silent."""

    choose: Callable[[str], str | None]
    delay: float = 1.0
    encoding: Encoding = "ucs2"
    split: Split = "udh8"

    @classmethod
    def by_suffix(
        cls,
        replies: Mapping[str, str],
        default: str | None = None,
        **kwargs: Any,
    ) -> AutoReply:
        """Reply by the number's ending: the longest key that ends the number wins, so
        {"1": "1", "3": "3 态度不好"} is a map from the last digit to the reply."""
        keys = sorted(replies, key=len, reverse=True)

        def choose(number: str) -> str | None:
            for key in keys:
                if number.endswith(key):
                    return replies[key]
            return default

        return cls(choose, **kwargs)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AutoReply:
        """{"by_suffix": {...}, "default": str|null, "delay": s, "encoding", "split"}."""
        extra = {k: obj[k] for k in ("delay", "encoding", "split") if k in obj}
        if "delay" in extra:
            extra["delay"] = float(extra["delay"])
        return cls.by_suffix(dict(obj.get("by_suffix", {})), obj.get("default"), **extra)


@dataclass(slots=True)
class Behaviour:
    """Every knob of the simulator; change them with `SmscSimulator.set_behaviour`."""

    # submit_sm_resp message ids, and the (possibly different) style in receipts.
    id_format: IdFormat = "hex"
    id_upper: bool = False
    id_width: int = 0
    dlr_id_format: IdFormat | None = None
    dlr_id_upper: bool | None = None
    dlr_id_width: int | None = None
    # Delivery receipts (registered_delivery & 1).
    dlr_mode: DlrMode = "both"
    dlr_delay: float = 0.0
    dlr_before_resp: bool = False
    outcomes: tuple[OutcomeRule, ...] = ()
    # Admission: first failing check decides the submit_sm_resp status.
    window: int | None = None  # unanswered submits per bind → ESME_RMSGQFUL
    max_tps: float | None = None  # per bind → ESME_RTHROTTLED
    throttle_every: int | None = None  # every Nth submit_sm → ESME_RTHROTTLED
    queue_full: bool = False  # → ESME_RMSGQFUL
    rejects: tuple[RejectRule, ...] = ()
    # Failures.
    response_delay: float = 0.0
    half_open: bool = False  # read everything, answer nothing, deliver nothing
    # deliver_sm towards the ESME: stored until acknowledged.
    deliver_timeout: float = 5.0
    deliver_window: int = 50
    # MO replies from citizens.
    auto_reply: AutoReply | None = None


def apply_changes(behaviour: Behaviour, changes: Mapping[str, Any]) -> None:
    """Apply `changes` (Python objects or their JSON forms) to `behaviour` in place.

    Raises ValueError for unknown keys or values that do not fit, before changing
    anything, so a bad POST /behaviour leaves the simulator as it was.
    """
    known = {f.name for f in fields(Behaviour)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown behaviour keys: {sorted(unknown)}")
    converted: dict[str, Any] = {}
    for key, value in changes.items():
        converted[key] = _convert(key, value)
    for key, value in converted.items():
        setattr(behaviour, key, value)


# Scalar knobs: (kind, may be None, minimum).
_SCALARS: dict[str, tuple[type, bool, float]] = {
    "id_upper": (bool, False, 0),
    "id_width": (int, False, 0),
    "dlr_id_upper": (bool, True, 0),
    "dlr_id_width": (int, True, 0),
    "dlr_delay": (float, False, 0),
    "dlr_before_resp": (bool, False, 0),
    "window": (int, True, 1),
    "max_tps": (float, True, 0),
    "throttle_every": (int, True, 1),
    "queue_full": (bool, False, 0),
    "response_delay": (float, False, 0),
    "half_open": (bool, False, 0),
    "deliver_timeout": (float, False, 0.001),
    "deliver_window": (int, False, 1),
}
_CHOICES: dict[str, tuple[str | None, ...]] = {
    "id_format": ("hex", "dec", "uuid"),
    "dlr_id_format": (None, "hex", "dec", "uuid"),
    "dlr_mode": ("text", "tlv", "both"),
}


def _convert(key: str, value: Any) -> Any:
    # A wrong type would only blow up later, inside a connection's data_received.
    if key == "outcomes":
        return tuple(_outcome(v) for v in value)
    if key == "rejects":
        return tuple(_reject(v) for v in value)
    if key == "auto_reply":
        if value is None or isinstance(value, AutoReply):
            return value
        if isinstance(value, Mapping):
            return AutoReply.from_json(value)
        raise ValueError("auto_reply must be an object, an AutoReply or null")
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ValueError(f"{key} must be one of {_CHOICES[key]}: {value!r}")
        return value
    kind, optional, minimum = _SCALARS[key]
    if value is None and optional:
        return None
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false: {value!r}")
    if kind is int and not (numeric and value == int(value)):
        raise ValueError(f"{key} must be an integer: {value!r}")
    if kind is float and not numeric:
        raise ValueError(f"{key} must be a number: {value!r}")
    if kind is not bool and value < minimum:
        raise ValueError(f"{key} must be at least {minimum}: {value!r}")
    return kind(value)


def _outcome(value: OutcomeRule | Mapping[str, Any]) -> OutcomeRule:
    if isinstance(value, OutcomeRule):
        return value
    data = dict(value)
    data["lose_parts"] = tuple(data.get("lose_parts", ()))
    return OutcomeRule(**data)


def _reject(value: RejectRule | Mapping[str, Any]) -> RejectRule:
    if isinstance(value, RejectRule):
        return value
    data = dict(value)
    if isinstance(data.get("status"), str):
        data["status"] = CommandStatus[data["status"]]
    return RejectRule(**data)


def behaviour_json(behaviour: Behaviour) -> dict[str, Any]:
    """A JSON-friendly view of the current behaviour (for GET/POST /behaviour)."""
    out: dict[str, Any] = {}
    for f in fields(Behaviour):
        value = getattr(behaviour, f.name)
        if f.name in ("outcomes", "rejects"):
            value = [{g.name: getattr(rule, g.name) for g in fields(rule)} for rule in value]
        elif f.name == "auto_reply":
            value = None if value is None else {"delay": value.delay, "encoding": value.encoding}
        out[f.name] = value
    return out


def find_outcome(behaviour: Behaviour, dest: str) -> OutcomeRule | None:
    """The first outcome rule matching `dest`, if any."""
    for rule in behaviour.outcomes:
        if re.search(rule.pattern, dest):
            return rule
    return None


def find_reject(behaviour: Behaviour, source: str, dest: str) -> RejectRule | None:
    """The first reject rule matching this submit, if any."""
    for rule in behaviour.rejects:
        if re.search(rule.pattern, dest if rule.field == "dest" else source):
            return rule
    return None


# --- Message ids -------------------------------------------------------------------

_UUID_PREFIX = 0x6D696E79_69000000_8000 << 48  # fixed high bits: "uuid-ish", stable


def format_id(number: int, style: IdFormat, upper: bool = False, width: int = 0) -> str:
    """Render message number `number` as an SMSC would: hex, decimal or a UUID form."""
    if style == "hex":
        text = format(number, "x").zfill(width)
    elif style == "dec":
        text = str(number).zfill(width)
    else:
        text = str(uuid.UUID(int=_UUID_PREFIX | (number & 0xFFFF_FFFF_FFFF)))
    return text.upper() if upper else text


def resp_id(behaviour: Behaviour, number: int) -> str:
    """The id given in submit_sm_resp."""
    return format_id(number, behaviour.id_format, behaviour.id_upper, behaviour.id_width)


def dlr_id(behaviour: Behaviour, number: int) -> str:
    """The id the receipt names; some SMSCs use another style than the resp."""
    return format_id(
        number,
        behaviour.dlr_id_format or behaviour.id_format,
        behaviour.id_upper if behaviour.dlr_id_upper is None else behaviour.dlr_id_upper,
        behaviour.id_width if behaviour.dlr_id_width is None else behaviour.dlr_id_width,
    )


@dataclass(slots=True)
class SubmitRecord:
    """One submit_sm as the simulator saw it and answered it."""

    index: int
    at: float
    system_id: str
    session: int
    sequence: int
    source: str
    dest: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    udh: bytes | None
    text: str
    part: tuple[int, int, int] | None
    tlvs: tuple[tuple[int, bytes], ...]
    status: int = 0
    message_id: str = ""
    dlr_message_id: str = ""
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form for GET /submits (octets as hex)."""
        return {
            "index": self.index,
            "at": self.at,
            "system_id": self.system_id,
            "session": self.session,
            "sequence": self.sequence,
            "source": self.source,
            "dest": self.dest,
            "data_coding": self.data_coding,
            "esm_class": self.esm_class,
            "registered_delivery": self.registered_delivery,
            "short_message": self.short_message.hex(),
            "udh": None if self.udh is None else self.udh.hex(),
            "text": self.text,
            "part": None if self.part is None else list(self.part),
            "tlvs": [[tag, value.hex()] for tag, value in self.tlvs],
            "status": self.status,
            "message_id": self.message_id,
            "dlr_message_id": self.dlr_message_id,
            "duplicate": self.duplicate,
        }
