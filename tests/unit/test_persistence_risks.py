"""Which Redis settings can lose what the gateway was told was stored (pure)."""

from __future__ import annotations

import pytest

from gateway.startup import persistence_risks

SAFE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "3600 1",
    "maxmemory": "0",
    "maxmemory-policy": "noeviction",
}


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_aof_fsynced_and_no_eviction_is_safe(fsync: str) -> None:
    assert persistence_risks({**SAFE, "appendfsync": fsync}) == []


def test_an_evicting_policy_without_maxmemory_evicts_nothing() -> None:
    assert persistence_risks({**SAFE, "maxmemory-policy": "allkeys-lru"}) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"appendonly": "no"}, "appendonly is no: a restart of Redis loses every survey"),
        ({"appendonly": "no", "save": ""}, "appendonly is no and save is empty"),
        ({"appendfsync": "no"}, "appendfsync is no"),
        (
            {"maxmemory": "1073741824", "maxmemory-policy": "allkeys-lru"},
            "maxmemory-policy is allkeys-lru with maxmemory 1073741824",
        ),
    ],
)
def test_each_risk_names_its_setting_and_the_fix(changes: dict[str, str], named: str) -> None:
    (risk,) = persistence_risks({**SAFE, **changes})
    assert risk.startswith(named)
    assert "set " in risk
