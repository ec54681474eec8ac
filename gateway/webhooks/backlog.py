"""The feed's backlog, per endpoint, for /healthz and /metrics.

Everything here is read from Redis (`EndpointQueue.gauges`), so any API process shows
the installation's backlog, whichever processes deliver it. A webhook worker's own
counters (requests in flight, events sent out of order, leases lost) are in its
process's status report (gateway/status.py) and shown per instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.metrics import Exposition
from gateway.webhooks.queue import EndpointQueue

# gauges() name -> (family, help); replayed_total is a counter, shown with the others
# of the stats hash (gateway/store/counters.py)
_GAUGES: Final = {
    "backlog": (
        "minyi_webhook_backlog_events",
        "Events not yet delivered: queued per survey, plus those not yet read from the "
        "events stream.",
    ),
    "surveys_due": ("minyi_webhook_surveys_due", "Surveys with events due or being delivered."),
    "stream_lag": (
        "minyi_webhook_stream_lag_events",
        "Events on the stream that the endpoint's consumer group has not read yet.",
    ),
    "stream_pending": (
        "minyi_webhook_stream_pending_events",
        "Events read from the stream and not yet queued (in a worker's hands).",
    ),
    "oldest_undelivered_age_s": (
        "minyi_webhook_oldest_undelivered_age_seconds",
        "Age of the oldest event not yet delivered (sampled), 0 when none waits.",
    ),
}

#: The per-process counters of a webhook worker's stats(), as families by instance.
_WORKER: Final = {
    "in_flight": ("gauge", "minyi_webhook_in_flight_surveys", "Surveys being delivered now."),
    "out_of_order": (
        "counter",
        "minyi_webhook_out_of_order_total",
        "Events sent before a missing predecessor, after waiting gap_timeout_s.",
    ),
    "lost_leases": (
        "counter",
        "minyi_webhook_lost_leases_total",
        "Surveys another process took over while this one delivered them.",
    ),
}


async def measure(redis: aioredis.Redis, endpoints: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each endpoint's gauges (an endpoint whose consumer group does not exist yet —
    no webhook worker ever started — shows its queue with no stream figures)."""
    out: dict[str, dict[str, Any]] = {}
    for name in endpoints:
        try:
            out[name] = dict(await EndpointQueue(redis, name).gauges())
        except ResponseError as exc:  # no stream or no group yet
            out[name] = {"error": str(exc)}
    return out


def health_body(gauges: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """/healthz's ``webhooks``: per endpoint its backlog and the oldest undelivered age."""
    return {
        name: {
            k: g.get(k) for k in ("backlog", "queued", "oldest_undelivered_age_s", "surveys_due")
        }
        if "error" not in g
        else dict(g)
        for name, g in gauges.items()
    }


def write_metrics(exp: Exposition, gauges: Mapping[str, Mapping[str, Any]]) -> None:
    """The backlog gauges, labelled by endpoint."""
    families = {k: exp.gauge(n, h, ("endpoint",)) for k, (n, h) in _GAUGES.items()}
    for endpoint, g in gauges.items():
        for k, family in families.items():
            if g.get(k) is not None:
                family.add(g[k], endpoint=endpoint)


def write_worker_metrics(exp: Exposition, per_instance: Mapping[str, Mapping[str, Any]]) -> None:
    """The webhook workers' own counters: ``{instance: WebhookWorker.stats()}``."""
    families = {
        k: (exp.counter if kind == "counter" else exp.gauge)(n, h, ("endpoint", "instance"))
        for k, (kind, n, h) in _WORKER.items()
    }
    for instance, stats in per_instance.items():
        for endpoint, item in stats.items():
            for k, family in families.items():
                if isinstance(item, Mapping) and item.get(k) is not None:
                    family.add(item[k], endpoint=endpoint, instance=instance)
