"""Pure parts of the webhook feed: backoff, stream entry parsing, heads, endpoints."""

from __future__ import annotations

import json

import pytest

from gateway.config import WebhookEndpoint
from gateway.store.streams import reply_entries
from gateway.webhooks.intake import parse_entry
from gateway.webhooks.queue import _head, backoff_delay
from gateway.webhooks.sender import _retry_after

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_backoff_grows_exponentially_then_caps() -> None:
    mid = [backoff_delay(a, 1.0, 900.0, 0.5) for a in range(1, 14)]
    assert mid[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert mid[-1] == 900.0
    assert mid == sorted(mid)
    assert backoff_delay(10_000, 1.0, 900.0, 0.5) == 900.0  # no overflow


def test_backoff_jitter_stays_within_a_quarter_and_under_the_cap() -> None:
    assert backoff_delay(3, 1.0, 900.0, 0.0) == 3.0
    assert backoff_delay(3, 1.0, 900.0, 0.999) == pytest.approx(4.998)
    assert backoff_delay(20, 1.0, 900.0, 0.999) == 900.0


def test_a_three_day_outage_takes_a_few_hundred_attempts_per_survey() -> None:
    elapsed, attempts = 0.0, 0
    while elapsed < 72 * 3600:
        attempts += 1
        elapsed += backoff_delay(attempts, 1.0, 900.0, 0.5)
    assert 280 <= attempts <= 300


def event(sid: str, seq: int) -> bytes:
    return json.dumps({"id": f"{sid}:{seq}", "survey_id": sid, "seq": seq}).encode()


def test_parse_entry_accepts_the_store_shape() -> None:
    fields = {b"sid": b"S1", b"seq": b"3", b"event": event("S1", 3)}
    assert parse_entry(fields) == ("S1", 3, event("S1", 3))
    assert parse_entry({"seq": "1", "event": event("", 1).decode()}) == ("", 1, event("", 1))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({b"sid": b"S1", b"event": b"{}"}, "seq missing or not an integer"),
        ({b"sid": b"S1", b"seq": b"x", b"event": b"{}"}, "seq missing or not an integer"),
        ({b"sid": b"S1", b"seq": b"1"}, "event missing"),
        ({b"sid": b"S1", b"seq": b"1", b"event": b"{oops"}, "event is not JSON"),
        ({b"sid": b"S1", b"seq": b"1", b"event": b"[1]"}, "event is not a JSON object with an id"),
        ({b"sid": b"S1", b"seq": b"1", b"event": b"{}"}, "event is not a JSON object with an id"),
    ],
)
def test_parse_entry_names_what_is_wrong(fields: dict[bytes, bytes], error: str) -> None:
    assert parse_entry(fields) == error


def test_reply_entries_reads_resp2_and_resp3_replies() -> None:
    entries = [(b"1-0", {b"seq": b"1"}), (b"2-0", {b"seq": b"2"})]
    assert reply_entries([[b"minyi:events", entries]]) == entries
    assert reply_entries({b"minyi:events": [entries]}) == entries
    assert reply_entries(None) == [] and reply_entries([]) == []


def row(delivered: int, retry: str, *seqs: int, sid: str = "S", pin: str = "") -> list[object]:
    flat: list[object] = [b"123.5", str(delivered).encode(), retry.encode(), pin.encode()]
    for s in seqs:
        flat += [event(sid, s), str(s).encode()]
    return flat


def test_head_takes_only_a_consecutive_run() -> None:
    h = _head(b"S", row(2, "", 3, 4, 5, 7, 8))
    assert h.seqs == (3, 4, 5) and len(h.events) == 3
    assert h.token == "123.5" and h.delivered == 2 and not h.gap and h.attempts == 0


def test_a_head_pinned_to_a_stored_batch_is_the_run_that_went_out_in_it() -> None:
    # seq 3-4 went out in batch_ab and failed; 5 arrived since: the retry sends 3-4 only
    h = _head(b"S", row(2, "", 3, 4, 5, pin="batch_ab 4"))
    assert h.batch == "batch_ab" and h.seqs == (3, 4) and len(h.events) == 2
    assert _head(b"S", row(2, "", 3, 4, 5)).batch == ""


def test_head_without_survey_has_no_order_and_no_gap() -> None:
    h = _head(b"", row(0, "", 5, 9, 12, sid=""))
    assert h.seqs == (5, 9, 12) and not h.gap


def test_head_gap_and_attempts_of_its_own_retry_state() -> None:
    h = _head("S", row(2, json.dumps({"seq": 4, "attempts": 7}), 4, 5))
    assert h.gap and h.attempts == 7
    other = _head("S", row(3, json.dumps({"seq": 9, "attempts": 7}), 4))
    assert not other.gap and other.attempts == 0  # state of another event: not ours


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), ("-5", 0.0), (None, None)])
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert _retry_after(value) == seconds
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_endpoint_hides_its_secret_and_checks_itself() -> None:
    ep = WebhookEndpoint(name="core", url="http://127.0.0.1:1/x", secret=SECRET)
    assert SECRET not in repr(ep) and "MfKQ9r8" not in repr(ep)
    with pytest.raises(ValueError):
        WebhookEndpoint(name="co re", url="http://x", secret=SECRET)
    with pytest.raises(ValueError):
        WebhookEndpoint(name="core", url="http://x", secret="whsec_!!")
    with pytest.raises(ValueError):
        WebhookEndpoint(name="core", url="http://x", secret=SECRET, concurrency=0)
