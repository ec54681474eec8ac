"""The carrier side of ``pjsip.conf`` in mode "own": the transports and the trunk's
options, as the template's ``{{...}}`` blocks (gateway/dialer/asterisk.py renders them).

- **Transports.** ``minyi-udp`` always (the agents' phones); with ``trunk_transport =
  "tcp"`` also ``minyi-tcp`` on the same port (RFC 3261 §18: one port number serves
  both), with ``"tls"`` ``minyi-tls`` on ``sip_tls_port`` (RFC 5630 §3: 5061), its
  certificate and the carrier's CA, the server's certificate verified. The trunk uses
  that transport; the agents stay on UDP.
- **NAT.** ``external_signaling_address`` and ``external_media_address`` go on every
  transport: Asterisk writes them into Contact/Via and the SDP for destinations outside
  ``local_net`` (res_pjsip's transport options).
- **Identity.** ``trunk_from_user``/``trunk_from_domain``: the From header the carrier
  expects (res_pjsip endpoint ``from_user``, ``from_domain``).
- **Registration.** ``trunk_register``: a ``type=registration`` (res_pjsip_outbound_
  registration) to the carrier, as ``trunk_username`` (or ``trunk_from_user``), with the
  trunk's digest credentials; ``line``/``endpoint`` tie the carrier's calls back to it.

Every value is checked as the rest of the rendering (no newline, ``;`` or bracket can
reach the file).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final

from gateway.config import AsteriskSettings

__all__ = ["TRANSPORT_NAMES", "trunk_values"]

TRANSPORT_NAMES: Final = {"udp": "minyi-udp", "tcp": "minyi-tcp", "tls": "minyi-tls"}
# res_pjsip_outbound_registration: retry after a failure, and the asked-for lifetime
REGISTER_RETRY_S: Final = 30
REGISTER_EXPIRATION_S: Final = 600
_USER_RE: Final = re.compile(r"[-A-Za-z0-9_.!~*'()&=+$]{1,64}")  # RFC 3261 §25.1 user
_DOMAIN_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9.]{0,252}")
_FILE_RE: Final = re.compile(r"/[-A-Za-z0-9_./]{1,300}")

Check = Callable[[str, str], str]
PortCheck = Callable[[int, str], str]


def _net(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"local_net entries must be networks, got {value!r}") from None
    return f"{net.network_address}/{net.prefixlen}"


def _transport(name: str, protocol: str, bind: str, port: str, nat: str, tls: str = "") -> str:
    return f"[{name}]\ntype=transport\nprotocol={protocol}\nbind={bind}:{port}\n{nat}{tls}"


def trunk_values(s: AsteriskSettings, ip: Check, host: Check, port: PortCheck) -> dict[str, str]:
    """The transports and trunk blocks of pjsip.conf.tmpl. ``ip``, ``host`` and ``port``
    are the renderer's checks (value, setting name) -> value; a wrong value raises
    ValueError (the renderer's AsteriskConfError) naming the setting."""
    nat = ""
    for key in ("external_signaling_address", "external_media_address"):
        address = getattr(s, key)
        if address is not None:
            nat += f"{key}={ip(address, key)}\n"
    nat += "".join(f"local_net={_net(n)}\n" for n in s.local_net)
    bind = ip(s.sip_bind, "sip_bind")
    sip_port = port(s.sip_port, "sip_port")
    transports = [_transport(TRANSPORT_NAMES["udp"], "udp", bind, sip_port, nat)]
    kind = s.trunk_transport
    if kind not in TRANSPORT_NAMES:
        raise ValueError(f"trunk_transport must be one of udp, tcp, tls, got {kind!r}")
    trunk_port = port(s.trunk_port, "trunk_port")
    if kind == "tcp":
        transports.append(_transport(TRANSPORT_NAMES["tcp"], "tcp", bind, sip_port, nat))
    if kind == "tls":
        transports.append(
            _transport(
                TRANSPORT_NAMES["tls"],
                "tls",
                bind,
                port(s.sip_tls_port, "sip_tls_port"),
                nat,
                _tls(s),
            )
        )
    elif any(f is not None for f in (s.tls_cert_file, s.tls_key_file, s.tls_ca_file)):
        raise ValueError('tls_cert_file must go with trunk_transport = "tls"')
    trunk_host = host(s.trunk_host, "trunk_host")
    uri_params = "" if kind == "udp" else f";transport={kind}"
    identity = ""
    if s.trunk_from_user is not None:
        identity += f"from_user={_check(s.trunk_from_user, _USER_RE, 'trunk_from_user')}\n"
    if s.trunk_from_domain is not None:
        identity += f"from_domain={_check(s.trunk_from_domain, _DOMAIN_RE, 'trunk_from_domain')}\n"
    return {
        "transports": "\n".join(transports),
        "trunk_transport_name": TRANSPORT_NAMES[kind],
        "trunk_identity": identity,
        "trunk_contact": f"sip:{trunk_host}:{trunk_port}{uri_params}",
        "trunk_registration": _registration(s, trunk_host, trunk_port, uri_params),
    }


def _tls(s: AsteriskSettings) -> str:
    if s.tls_cert_file is None or s.tls_key_file is None:
        raise ValueError('tls_cert_file and tls_key_file are required with trunk_transport = "tls"')
    out = (
        f"cert_file={_check(s.tls_cert_file, _FILE_RE, 'tls_cert_file')}\n"
        f"priv_key_file={_check(s.tls_key_file, _FILE_RE, 'tls_key_file')}\n"
        # RFC 9325 §3.1.1: TLS 1.2 at least
        "method=tlsv1_2\n"
    )
    if s.tls_ca_file is not None:
        out += f"ca_list_file={_check(s.tls_ca_file, _FILE_RE, 'tls_ca_file')}\n"
    if s.tls_verify_server:
        if s.tls_ca_file is None:
            raise ValueError("tls_ca_file is required to verify the carrier (tls_verify_server)")
        out += "verify_server=yes\n"
    return out


def _registration(s: AsteriskSettings, trunk_host: str, trunk_port: str, params: str) -> str:
    if not s.trunk_register:
        return ""
    user = s.trunk_username or s.trunk_from_user
    if user is None:
        raise ValueError("trunk_register needs trunk_username (or trunk_from_user) to register as")
    user = _check(user, _USER_RE, "trunk_username")
    domain = s.trunk_from_domain or trunk_host
    auth = f"outbound_auth={s.trunk_name}-auth\n" if s.trunk_username is not None else ""
    return (
        f"[{s.trunk_name}-reg]\n"
        "type=registration\n"
        f"transport={TRANSPORT_NAMES[s.trunk_transport]}\n"
        f"server_uri=sip:{trunk_host}:{trunk_port}{params}\n"
        f"client_uri=sip:{user}@{domain}\n"
        f"contact_user={user}\n"
        f"{auth}"
        f"retry_interval={REGISTER_RETRY_S}\n"
        f"expiration={REGISTER_EXPIRATION_S}\n"
        "line=yes\n"
        f"endpoint={s.trunk_name}\n"
    )


def _check(value: str, rx: re.Pattern[str], what: str) -> str:
    if not rx.fullmatch(value):
        raise ValueError(f"{what} must match {rx.pattern}, got {value!r}")
    return value
