"""The ``[[sms.binds]]`` entries: one session to an SMS center each, in SMPP 3.4 or in
China Mobile's CMPP 2.0 / 3.0 (``protocol = "smpp" | "cmpp2" | "cmpp3"``, default
"smpp").

An SMPP password may come from ``MINYI_SMPP_PASSWORD_<BIND>``, a CMPP shared secret
from ``MINYI_CMPP_SECRET_<BIND>``. The protocol limits are typed here again, with
their sections, because the config imports nothing of the rest of the project.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from gateway.config.reader import (
    MISSING,
    ConfigError,
    Table,
    ascii_field,
    code,
    env_name,
    host,
    name,
    show,
)

Protocol = Literal["smpp", "cmpp2", "cmpp3"]
CmppProtocol = Literal["cmpp2", "cmpp3"]
BindMode = Literal["transceiver", "transmitter", "receiver"]
IdBase = Literal["text", "hex", "dec"]

ENV_SMPP_PASSWORD: Final = "MINYI_SMPP_PASSWORD_"
ENV_CMPP_SECRET: Final = "MINYI_CMPP_SECRET_"
PROTOCOLS: Final[tuple[Protocol, ...]] = ("smpp", "cmpp2", "cmpp3")

# SMPP 3.4 field limits. The spec gives C-Octet String sizes including the NULL
# terminator, so the usable length is one less.
SYSTEM_ID_MAX: Final = 15  # §5.2.1 system_id: Var. max 16
PASSWORD_MAX: Final = 8  # §5.2.2 password: Var. max 9
SYSTEM_TYPE_MAX: Final = 12  # §5.2.3 system_type: Var. max 13
SOURCE_ADDR_MAX: Final = 20  # §5.2.8 source_addr: Var. max 21 (extension included)
TON_VALUES: Final = frozenset(range(7))  # §5.2.5 Unknown … Abbreviated
NPI_VALUES: Final = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})  # §5.2.6

# CMPP 2.0 / 3.0 field limits (Octet Strings of a fixed size, 7.1).
SP_ID_SIZE: Final = 6  # 7.4.1.1 Source_Addr (the SP's enterprise code) and Msg_src
SERVICE_ID_MAX: Final = 10  # 7.4.3.1 Service_Id
SRC_ID_MAX: Final = 21  # 7.4.3.1 Src_Id: the short code with the extension code
FEE_CODE_MAX: Final = 6  # 7.4.3.1 FeeCode, in fen
FEE_TERMINAL_MAX: Final = 21  # 7.4.3.1 Fee_terminal_Id (21 in 2.0; 32 in 3.0)
FEE_TYPES: Final = ("01", "02", "03", "04", "05")  # 7.4.3.1 FeeType
FEE_USER_TYPES: Final = frozenset(range(4))  # 7.4.3.1 Fee_UserType 0..3
SECRET_MAX: Final = 64  # not in the spec (any octets go into the MD5); a sane bound


@dataclass(frozen=True)
class SmppBind:
    """One SMPP 3.4 session to an SMS center."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # never in a log line
    protocol: Literal["smpp"] = "smpp"
    system_type: str = ""
    mode: BindMode = "transceiver"
    window: int = 64
    tps: float = 100.0
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    smsc: str = "default"  # binds to the same SMS center share a message-id namespace
    submit_id_base: IdBase = "text"
    dlr_id_base: IdBase = "text"
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 1

    @property
    def source(self) -> str:
        """This bind's own sender number; "" means [sms] source_addr."""
        return ""

    @property
    def family(self) -> str:
        """The protocol family: message ids of one family can share an SMS center."""
        return "smpp"


@dataclass(frozen=True)
class CmppBind:
    """One CMPP 2.0 or 3.0 connection to a China Mobile ISMG (互联网短信网关).

    It sends CMPP_SUBMIT and receives CMPP_DELIVER (replies and status reports) on the
    same connection. Msg_Ids are 64-bit numbers, kept and matched in decimal
    (`submit_id_base` and `dlr_id_base` are "dec", not settings).
    """

    name: str
    host: str
    port: int
    sp_id: str  # 企业代码: CMPP_CONNECT's Source_Addr, and Msg_src unless set
    secret: str = field(repr=False)  # the shared secret; never in a log line
    protocol: CmppProtocol = "cmpp3"
    service_id: str = ""  # 业务代码 (Service_Id)
    src_id: str = ""  # the 106 number (Src_Id) before the extension; "" = [sms] source_addr
    msg_src: str = ""  # Msg_src; "" = sp_id
    fee_user_type: int = 2  # 2: the SP pays (7.4.3.1)
    fee_type: str = "01"  # 01: free for the citizen
    fee_code: str = "000000"
    fee_terminal_id: str = ""
    window: int = 16  # 6.4: W = 16
    tps: float = 100.0
    active_test_s: float = 180.0  # 6.1: C, idle time before CMPP_ACTIVE_TEST
    response_timeout_s: float = 60.0  # 6.1: T
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    # Msg_Ids of all CMPP binds are one namespace unless set apart (SMPP's is "default")
    smsc: str = "cmpp"

    @property
    def family(self) -> str:
        """The protocol family: message ids of one family can share an SMS center."""
        return "cmpp"

    @property
    def mode(self) -> BindMode:
        """A CMPP connection sends and receives: a transceiver in SMPP's words."""
        return "transceiver"

    @property
    def submit_id_base(self) -> IdBase:
        """Msg_Ids are spelled in decimal on both sides."""
        return "dec"

    @property
    def dlr_id_base(self) -> IdBase:
        """See submit_id_base."""
        return "dec"

    @property
    def source(self) -> str:
        """This bind's own sender number; "" means [sms] source_addr."""
        return self.src_id


Bind = SmppBind | CmppBind


def parse_bind(data: object, path: str, env: Mapping[str, str]) -> Bind:
    """One ``[[sms.binds]]`` entry, of the protocol it names."""
    protocol = "smpp"
    if isinstance(data, Mapping) and "protocol" in data:
        protocol = Table({"protocol": data["protocol"]}, path, ("protocol",)).pick(
            "protocol", "smpp", PROTOCOLS
        )
    if protocol == "smpp":
        return _smpp_bind(data, path, env)
    return _cmpp_bind(data, path, env)


_SMPP_KEYS: Final = tuple(f.name for f in dataclasses.fields(SmppBind))
_CMPP_KEYS: Final = tuple(f.name for f in dataclasses.fields(CmppBind))
_MODES: Final[tuple[BindMode, ...]] = ("transceiver", "transmitter", "receiver")
_ID_BASES: Final[tuple[IdBase, ...]] = ("text", "hex", "dec")
_CMPP: Final[tuple[CmppProtocol, ...]] = ("cmpp2", "cmpp3")


def _smpp_bind(data: object, path: str, env: Mapping[str, str]) -> SmppBind:
    t = Table(data, path, _SMPP_KEYS)
    bind_name = name(t.get("name"), t.at("name"))
    password, origin = t.secret("password", env, env_name(ENV_SMPP_PASSWORD, bind_name))
    if not password.isascii() or len(password) > PASSWORD_MAX or not password.isprintable():
        raise ConfigError(
            t.at("password"),
            f"must be at most {PASSWORD_MAX} ASCII characters (SMPP 3.4 §5.2.2), "
            f"got {len(password)} characters{origin}",
        )
    d = SmppBind
    reconnect_initial_s = t.number(
        "reconnect_initial_s", d.reconnect_initial_s, 0, 3600, above=True
    )
    return SmppBind(
        name=bind_name,
        host=host(t.get("host"), t.at("host")),
        port=t.integer("port", MISSING, 1, 65535),
        system_id=ascii_field(
            t.get("system_id"), t.at("system_id"), SYSTEM_ID_MAX, "SMPP 3.4 §5.2.1"
        ),
        password=password,
        system_type=ascii_field(
            t.get("system_type", d.system_type),
            t.at("system_type"),
            SYSTEM_TYPE_MAX,
            "SMPP 3.4 §5.2.3",
            empty=True,
        ),
        mode=t.pick("mode", d.mode, _MODES),
        window=t.integer("window", d.window, 1, 10_000),
        tps=t.number("tps", d.tps, 0, 100_000, above=True),
        enquire_link_s=t.number("enquire_link_s", d.enquire_link_s, 1, 3600),
        response_timeout_s=t.number("response_timeout_s", d.response_timeout_s, 0, 600, above=True),
        reconnect_initial_s=reconnect_initial_s,
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, reconnect_initial_s, 86400),
        smsc=name(t.get("smsc", d.smsc), t.at("smsc")),
        submit_id_base=t.pick("submit_id_base", d.submit_id_base, _ID_BASES),
        dlr_id_base=t.pick("dlr_id_base", d.dlr_id_base, _ID_BASES),
        source_ton=code(
            t.get("source_ton", d.source_ton), t.at("source_ton"), TON_VALUES, "SMPP 3.4 §5.2.5"
        ),
        source_npi=code(
            t.get("source_npi", d.source_npi), t.at("source_npi"), NPI_VALUES, "SMPP 3.4 §5.2.6"
        ),
        dest_ton=code(
            t.get("dest_ton", d.dest_ton), t.at("dest_ton"), TON_VALUES, "SMPP 3.4 §5.2.5"
        ),
        dest_npi=code(
            t.get("dest_npi", d.dest_npi), t.at("dest_npi"), NPI_VALUES, "SMPP 3.4 §5.2.6"
        ),
    )


def _digits(value: object, path: str, lo: int, hi: int, what: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ConfigError(path, f"must be {what} in quotes (digits only), got {show(value)}")
    if not lo <= len(value) <= hi:
        raise ConfigError(path, f"must be {lo} to {hi} digits ({what}), got {len(value)}")
    return value


def _cmpp_bind(data: object, path: str, env: Mapping[str, str]) -> CmppBind:
    t = Table(data, path, _CMPP_KEYS)
    d = CmppBind
    bind_name = name(t.get("name"), t.at("name"))
    secret, origin = t.secret("secret", env, env_name(ENV_CMPP_SECRET, bind_name))
    if not secret.isascii() or not secret.isprintable() or len(secret) > SECRET_MAX:
        raise ConfigError(
            t.at("secret"),
            f"must be at most {SECRET_MAX} printable ASCII characters, "
            f"got {len(secret)} characters{origin}",
        )
    sp_id = _digits(t.get("sp_id"), t.at("sp_id"), SP_ID_SIZE, SP_ID_SIZE, "the SP code, 7.4.1.1")
    src_id = t.get("src_id", d.src_id)
    if src_id != "":
        src_id = _digits(src_id, t.at("src_id"), 1, SRC_ID_MAX, "the 106 number, 7.4.3.1")
    msg_src = t.get("msg_src", d.msg_src)
    if msg_src != "":
        msg_src = _digits(msg_src, t.at("msg_src"), SP_ID_SIZE, SP_ID_SIZE, "Msg_src, 7.4.3.1")
    fee_code = t.get("fee_code", d.fee_code)
    fee_code = _digits(fee_code, t.at("fee_code"), 1, FEE_CODE_MAX, "FeeCode in fen, 7.4.3.1")
    fee_terminal_id = t.get("fee_terminal_id", d.fee_terminal_id)
    if fee_terminal_id != "":
        fee_terminal_id = _digits(
            fee_terminal_id, t.at("fee_terminal_id"), 1, FEE_TERMINAL_MAX, "a number, 7.4.3.1"
        )
    reconnect_initial_s = t.number(
        "reconnect_initial_s", d.reconnect_initial_s, 0, 3600, above=True
    )
    return CmppBind(
        name=bind_name,
        host=host(t.get("host"), t.at("host")),
        port=t.integer("port", MISSING, 1, 65535),
        sp_id=sp_id,
        secret=secret,
        protocol=t.pick("protocol", MISSING, _CMPP),
        service_id=ascii_field(
            t.get("service_id", d.service_id),
            t.at("service_id"),
            SERVICE_ID_MAX,
            "CMPP 7.4.3.1",
            empty=True,
        ),
        src_id=str(src_id),
        msg_src=str(msg_src),
        fee_user_type=code(
            t.get("fee_user_type", d.fee_user_type),
            t.at("fee_user_type"),
            FEE_USER_TYPES,
            "CMPP 7.4.3.1",
        ),
        fee_type=t.pick("fee_type", d.fee_type, FEE_TYPES),
        fee_code=fee_code,
        fee_terminal_id=str(fee_terminal_id),
        window=t.integer("window", d.window, 1, 10_000),
        tps=t.number("tps", d.tps, 0, 100_000, above=True),
        active_test_s=t.number("active_test_s", d.active_test_s, 1, 3600),
        response_timeout_s=t.number("response_timeout_s", d.response_timeout_s, 0, 600, above=True),
        reconnect_initial_s=reconnect_initial_s,
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, reconnect_initial_s, 86400),
        smsc=name(t.get("smsc", d.smsc), t.at("smsc")),
    )
