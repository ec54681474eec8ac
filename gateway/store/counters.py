"""The counters the Lua library keeps in the stats hash (keys.STATS), as metric families.

The scripts count with ``HINCRBY STATS <field>``; this table says what each field
means on /metrics. A field is the installation's (every process writes the one hash),
so every API process shows the same numbers.

| field | family |
|---|---|
| ``event:<type>`` (store.lua's emit, minyi_unmatched) | ``minyi_events_total{type}`` |
| ``sms:resent`` | ``minyi_sms_resent_total`` |
| ``dlr:held``, ``dlr:held_matched``, ``dlr:orphaned`` | ``minyi_dlr_*_total`` |
| ``asr:dead``, ``asr:no_survey`` | ``minyi_asr_dead_total``, ``minyi_asr_no_survey_total`` |
| ``recordings:deleted`` | ``minyi_recordings_deleted_total`` |
| ``webhook:<endpoint>:<what>`` (queue.py's ``stats_prefix``) | ``minyi_webhook_*{endpoint}`` |

``webhook:<endpoint>:queued`` goes down as events are delivered: a gauge. A field no
row names (a counter added to a script before it is added here) is still shown, as
``minyi_stats_other_total{field}``, so nothing counted is ever hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.metrics import Exposition

_PLAIN: Final = {
    "sms:resent": (
        "minyi_sms_resent_total",
        "SMS parts sent again that may have reached the SMS center before (sms.resent).",
    ),
    "dlr:held": (
        "minyi_dlr_held_total",
        "Receipts that arrived before their submit answer was stored, and were held.",
    ),
    "dlr:held_matched": (
        "minyi_dlr_held_matched_total",
        "Held receipts matched to their part once its submit answer was stored.",
    ),
    "dlr:orphaned": (
        "minyi_dlr_orphaned_total",
        "Receipts that matched no part (kept on the orphan stream).",
    ),
    "asr:dead": ("minyi_asr_dead_total", "Recordings whose transcription failed for good."),
    "asr:no_survey": (
        "minyi_asr_no_survey_total",
        "Transcripts whose survey no longer exists (not stored).",
    ),
    "recordings:deleted": (
        "minyi_recordings_deleted_total",
        "Recordings deleted by the retention sweep.",
    ),
}

# webhook:<endpoint>:<what> -> (family, kind, help)
_WEBHOOK: Final = {
    "delivered": (
        "minyi_webhook_delivered_total",
        "counter",
        "Events the endpoint took (2xx), counted once per event, batched or not.",
    ),
    "failed": (
        "minyi_webhook_failed_requests_total",
        "counter",
        "Failed delivery requests (no answer, or not 2xx), counted once per request, "
        "whatever number of events or surveys it carried.",
    ),
    "dead": (
        "minyi_webhook_dead_lettered_total",
        "counter",
        "Events dead-lettered (failed for max_age_hours, or malformed on the stream).",
    ),
    "replayed": (
        "minyi_webhook_replayed_total",
        "counter",
        "Dead letters put back in their surveys' queues (minyi webhooks replay).",
    ),
    "queued": (
        "minyi_webhook_queued_events",
        "gauge",
        "Events in the endpoint's per-survey queues, not yet delivered.",
    ),
}


def write_counters(exp: Exposition, stats: Mapping[str, int]) -> None:
    """Add the stats hash's fields (``Store.stats()``) to ``exp``."""
    events = exp.counter("minyi_events_total", "Events appended to the feed, by type.", ("type",))
    for name, help_ in _PLAIN.values():
        exp.counter(name, help_)  # declared even at 0: an alert on it has a series
    for name, kind, help_ in _WEBHOOK.values():
        (exp.counter if kind == "counter" else exp.gauge)(name, help_, ("endpoint",))
    other = exp.counter(
        "minyi_stats_other_total",
        "Counters of the stats hash that no family names yet, by field.",
        ("field",),
    )
    for field, value in sorted(stats.items()):
        if field.startswith("event:"):
            events.add(value, type=field.removeprefix("event:"))
        elif field in _PLAIN:
            exp.families[_PLAIN[field][0]].add(value)
        elif field.startswith("webhook:") and field.count(":") >= 2:
            endpoint, _, what = field.removeprefix("webhook:").rpartition(":")
            if what in _WEBHOOK:
                exp.families[_WEBHOOK[what][0]].add(value, endpoint=endpoint)
            else:
                other.add(value, field=field)
        else:
            other.add(value, field=field)
    for name, _ in _PLAIN.values():
        family = exp.families[name]
        if not family.samples:
            family.add(0)
