"""[[sms.binds]] of both protocols and [[sms.routes]]: each mistake names its setting,
the CMPP secret comes from the environment like the SMPP password, routes choose a
survey's binds with a clear default."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import CmppBind, ConfigError, SmppBind, SmsRoute, parse_settings
from sms.routing import candidates
from tests.unit.test_config import DELETE, base, error, with_

CMPP: dict[str, Any] = {
    "name": "cmcc",
    "protocol": "cmpp3",
    "host": "10.1.1.1",
    "port": 7890,
    "sp_id": "901234",
    "secret": "s3cret",
    "src_id": "1065730001",
}


def mixed(**sms: Any) -> dict[str, Any]:
    data = base()
    data["sms"]["binds"].append(dict(CMPP))
    data["sms"].update(sms)
    return data


def test_a_bind_is_smpp_by_default_or_names_its_protocol() -> None:
    settings = parse_settings(mixed(), {})
    smpp, cmpp = settings.sms.binds
    assert isinstance(smpp, SmppBind) and smpp.protocol == "smpp"
    assert isinstance(cmpp, CmppBind) and cmpp.protocol == "cmpp3"
    assert (cmpp.mode, cmpp.submit_id_base, cmpp.dlr_id_base) == ("transceiver", "dec", "dec")
    assert cmpp.smsc == "cmpp" and smpp.smsc == "default"  # two message-id namespaces
    assert settings.sms.source_of("cmcc") == "1065730001"
    assert settings.sms.source_of("a") == settings.sms.source_addr
    assert "s3cret" not in repr(cmpp)


def test_the_cmpp_secret_comes_from_the_environment() -> None:
    data = with_(mixed(), "sms.binds[1].secret", DELETE)
    assert "MINYI_CMPP_SECRET_CMCC" in str(error(data))
    bind = parse_settings(data, {"MINYI_CMPP_SECRET_CMCC": "from-env"}).sms.binds[1]
    assert isinstance(bind, CmppBind) and bind.secret == "from-env"
    warned = parse_settings(mixed(), {"MINYI_CMPP_SECRET_CMCX": "x"}).warnings
    assert any("MINYI_CMPP_SECRET_CMCX" in w for w in warned)


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("sms.binds[1].protocol", "cmpp4", "sms.binds[1].protocol"),
        ("sms.binds[1].sp_id", "90123", "6 to 6 digits"),
        ("sms.binds[1].sp_id", "9012ab", "digits only"),
        ("sms.binds[1].src_id", "1" * 22, "sms.binds[1].src_id"),
        ("sms.binds[1].service_id", "X" * 11, "CMPP 7.4.3.1"),
        ("sms.binds[1].fee_type", "06", "sms.binds[1].fee_type"),
        ("sms.binds[1].fee_user_type", 4, "CMPP 7.4.3.1"),
        ("sms.binds[1].fee_code", "1234567", "sms.binds[1].fee_code"),
        ("sms.binds[1].system_id", "minyi", "unknown setting"),  # an SMPP key on CMPP
        ("sms.binds[1].window", 0, "sms.binds[1].window"),
        ("sms.binds[1].secret", "密码", "printable ASCII"),
        ("sms.binds[1].smsc", "default", "give each its own smsc"),  # SMPP's center
        ("sms.binds[0].sp_id", "901234", "unknown setting"),  # a CMPP key on SMPP
    ],
)
def test_cmpp_mistakes_name_their_setting(path: str, value: object, says: str) -> None:
    assert says in str(error(with_(mixed(), path, value)))


def test_src_id_and_extension_fit_the_21_octets_of_src_id() -> None:
    data = mixed(extension_digits=6)
    data["sms"]["binds"][1]["src_id"] = "1" * 16
    assert "CMPP 7.4.3.1 Src_Id" in str(error(data))


def test_routes_choose_binds_first_match_wins_with_a_clear_default() -> None:
    routes = [
        {"binds": ["cmcc"], "prefixes": ["134", "135", "139"]},
        {"binds": ["a"], "units": ["3306*"]},
        {"binds": ["cmcc", "a"], "prefixes": ["150"], "units": ["330700"]},
    ]
    sms = parse_settings(mixed(routes=routes, default_binds=["a"]), {}).sms
    assert sms.routes[0] == SmsRoute(binds=("cmcc",), prefixes=("134", "135", "139"))
    assert candidates(sms, "13900000001", "330602") == ("cmcc",)  # the first that matches
    assert candidates(sms, "13800000001", "330602") == ("a",)  # by unit
    assert candidates(sms, "15000000001", "330700") == ("cmcc", "a")  # both must match
    assert candidates(sms, "15000000001", "330800") == ("a",)  # none: the default
    no_default = parse_settings(mixed(routes=routes), {}).sms
    assert candidates(no_default, "15000000001", "330800") == ()  # () = every sender


@pytest.mark.parametrize(
    ("routes", "default", "says"),
    [
        ([{"binds": ["nope"], "prefixes": ["139"]}], [], "sms.routes[0].binds[0]"),
        ([{"binds": [], "prefixes": ["139"]}], [], "sms.routes[0].binds"),
        ([{"binds": ["cmcc"]}], [], "needs prefixes or units"),
        ([{"binds": ["cmcc"], "prefixes": ["13a"]}], [], "sms.routes[0].prefixes[0]"),
        ([{"binds": ["cmcc"], "prefixes": ["1" * 12]}], [], "sms.routes[0].prefixes[0]"),
        ([{"binds": ["cmcc"], "units": ["33 06"]}], [], "sms.routes[0].units[0]"),
        ([{"binds": ["cmcc"], "unit": ["3306*"]}], [], "did you mean"),
        ([], ["cmcc", "cmcc"], "listed twice"),
        ([], ["rx"], "sms.default_binds[0]"),  # a receiver cannot send
    ],
)
def test_route_mistakes_name_their_setting(routes: Any, default: Any, says: str) -> None:
    data = mixed(routes=routes, default_binds=default)
    data["sms"]["binds"].append({**data["sms"]["binds"][0], "name": "rx", "mode": "receiver"})
    with pytest.raises(ConfigError) as info:
        parse_settings(data, {})
    assert says in str(info.value)
