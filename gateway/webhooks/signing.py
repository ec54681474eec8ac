"""Standard Webhooks signatures: signing for the feed, verification for receivers.

The scheme (https://www.standardwebhooks.com/, spec section "Signature scheme"):
the sender puts three headers on every request —

    webhook-id:        the message id (stable: a retry of the same event keeps it)
    webhook-timestamp: integer unix seconds when this attempt was signed
    webhook-signature: "v1,<base64 HMAC-SHA256(key, f'{id}.{timestamp}.{body}')>"

where the key is the base64-decoded part of a secret written as ``whsec_<base64>``.
Several signatures may be sent space-separated (secret rotation); a receiver accepts
the request if any ``v1`` signature matches, and rejects timestamps too far from its
own clock to blunt replay attacks.

Pure functions: no I/O, no logging (a secret must never reach a log).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

# The secret's format has its home where the config file is checked; signing uses its key.
from gateway.config.webhooks import decode_secret as decode_secret

SIGNATURE_VERSION = "v1"
# Standard Webhooks spec, "Verifying webhook authenticity": receivers should reject
# timestamps more than a few minutes away; the reference libraries use 5 minutes.
DEFAULT_TOLERANCE_S = 300

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def webhook_id(event_id: str) -> str:
    """The ``webhook-id`` of an event: its id with ``%`` and ``.`` percent-encoded.

    The signed content is ``id.timestamp.body`` joined by full stops, so the spec
    ("Signature scheme") advises against a full stop in the id; an event id is built
    from the core system's survey id, which may hold one (``S.1:3``). The encoding is
    one-to-one (``%`` is encoded too) and stable, so a retry keeps the id; the event's
    own ``id`` in the body is unchanged.
    """
    return event_id.replace("%", "%25").replace(".", "%2E")


class InvalidSignature(Exception):
    """The request is not signed by a holder of the secret, or is too old/new.

    Messages never contain the secret or a signature value.
    """


def signature_with_key(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature for an already decoded key (hot path of the sender)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode('ascii')}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign one request: returns the ``webhook-signature`` header value ``v1,<base64>``."""
    return signature_with_key(decode_secret(secret), msg_id, timestamp, body)


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received webhook; return None if genuine, raise InvalidSignature if not.

    ``headers`` may be any mapping (header names are matched case-insensitively);
    ``body`` must be the raw request body, byte for byte. ``now`` (unix seconds)
    is for tests; it defaults to the local clock.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(HEADER_ID)
    raw_ts = lowered.get(HEADER_TIMESTAMP)
    raw_sigs = lowered.get(HEADER_SIGNATURE)
    if not msg_id or not raw_ts or not raw_sigs:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature("webhook-timestamp is outside the tolerance window")
    try:
        key = decode_secret(secret)
    except ValueError as exc:
        raise InvalidSignature(str(exc)) from None
    # The MAC covers the header text as sent, not our re-formatting of it.
    expected = hmac.new(key, f"{msg_id}.{raw_ts}.".encode() + body, hashlib.sha256).digest()
    for candidate in raw_sigs.split():
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue  # other schemes (v1a asymmetric, future versions) are not ours
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise InvalidSignature("no matching v1 signature")
