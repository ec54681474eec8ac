"""The pure parts of /healthz and /metrics: the exposition's rules (checked by
Prometheus' own promtool), what the stats hash becomes, and when the binds make the
gateway unfit (sms.health.judge)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gateway.config import SmppBind
from gateway.metrics import Exposition, MetricError
from gateway.store.counters import write_counters
from sms import health as sms_health

PROMTOOL = shutil.which("promtool")


def promtool_ok(page: str) -> None:
    assert PROMTOOL, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr + page


def test_a_counter_ends_in_total_and_a_gauge_never_does() -> None:
    exp = Exposition()
    with pytest.raises(MetricError, match="must end in _total"):
        exp.counter("minyi_webhook_delivered", "x")
    with pytest.raises(MetricError, match="a gauge goes down"):
        exp.gauge("minyi_webhook_queued_total", "x")


def test_a_series_has_exactly_its_familys_labels_once() -> None:
    exp = Exposition()
    family = exp.counter("minyi_events_total", "Events.", ("type",))
    family.add(1, type="survey.accepted")
    with pytest.raises(MetricError, match="given twice"):
        family.add(2, type="survey.accepted")
    with pytest.raises(MetricError, match="declared"):
        family.add(1, type="x", endpoint="core")
    with pytest.raises(MetricError, match="declared twice, differently"):
        exp.counter("minyi_events_total", "Events.", ("type", "unit"))


def test_label_values_and_help_are_escaped_and_the_page_passes_promtool() -> None:
    exp = Exposition()
    exp.counter("minyi_surveys_total", 'Surveys "by" unit\\state\nand state.', ("unit", "state"))
    exp.families["minyi_surveys_total"].add(12, unit='33"06\\02\n', state="closed")
    exp.gauge("minyi_sms_bind_tps", "TPS.", ("bind",)).add(0.5, bind="b1")
    page = exp.render()
    assert 'minyi_surveys_total{unit="33\\"06\\\\02\\n",state="closed"} 12' in page
    assert '# HELP minyi_surveys_total Surveys "by" unit\\\\state\\nand state.' in page
    assert 'minyi_sms_bind_tps{bind="b1"} 0.5' in page
    promtool_ok(page)


def test_the_stats_hash_becomes_labelled_families_with_the_queue_a_gauge() -> None:
    exp = Exposition()
    write_counters(
        exp,
        {
            "event:survey.accepted": 3,
            "webhook:core:delivered": 7,
            "webhook:core:failed": 2,
            "webhook:core:queued": 4,
            "webhook:core:mystery": 1,
            "new:counter": 5,
        },
    )
    page = exp.render()
    lines = page.splitlines()
    assert 'minyi_events_total{type="survey.accepted"} 3' in lines
    assert 'minyi_webhook_delivered_total{endpoint="core"} 7' in lines
    assert 'minyi_webhook_failed_requests_total{endpoint="core"} 2' in lines
    assert "# TYPE minyi_webhook_queued_events gauge" in lines
    assert 'minyi_webhook_queued_events{endpoint="core"} 4' in lines
    # nothing counted is hidden: an unknown field is shown by its name
    assert 'minyi_stats_other_total{field="webhook:core:mystery"} 1' in lines
    assert 'minyi_stats_other_total{field="new:counter"} 5' in lines
    assert "minyi_sms_resent_total 0" in lines  # declared at 0: an alert has a series
    assert not [x for x in lines if "_queued_total" in x]
    promtool_ok(page)


def bind(name: str, mode: str = "transceiver") -> SmppBind:
    return SmppBind(name=name, host="127.0.0.1", port=1, system_id="u", password="p", mode=mode)  # type: ignore[arg-type]


def row(name: str, bound: bool, *, stale: bool = False, error: str = "") -> sms_health.BindRow:
    (r,) = sms_health.rows(
        "sms-1",
        {name: {"protocol": "smpp", "bound": bound, "last_error": error}},
        12.0 if stale else 0.5,
        stale,
    )
    return r


def test_a_protocol_with_no_bind_up_is_a_problem_naming_each_binds_error() -> None:
    rows, problems = sms_health.judge([bind("b1"), bind("b2")], [row("b1", False, error="refused")])
    assert problems == ["sms: no smpp bind is bound (b1: refused; b2: no process runs it)"]
    assert [(r["name"], r["instance"]) for r in rows] == [("b1", "sms-1"), ("b2", None)]
    _, problems = sms_health.judge([bind("b1"), bind("b2")], [row("b1", True), row("b2", False)])
    assert problems == []  # one bind of the protocol up is enough


def test_a_stale_report_never_counts_as_a_bind_up() -> None:
    _, problems = sms_health.judge([bind("b1")], [row("b1", True, stale=True)])
    assert problems == ["sms: no smpp bind is bound (b1: its process stopped reporting)"]


def test_binds_up_that_only_send_or_only_receive_are_half_a_problem() -> None:
    configured = [bind("tx", "transmitter"), bind("rx", "receiver")]
    _, problems = sms_health.judge(configured, [row("tx", True), row("rx", False, error="x")])
    assert problems == ["sms: no smpp bind that receives is bound (rx: x)"]
    _, problems = sms_health.judge(configured, [row("tx", False, error="y"), row("rx", True)])
    assert problems == ["sms: no smpp bind that sends is bound (tx: y)"]
