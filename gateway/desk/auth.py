"""Who is at the desk: PIN hashes, login sessions in Redis, CSRF tokens.

- A PIN (or token) is stored only as its scrypt hash (RFC 7914; ``hashlib.scrypt``),
  ``scrypt$<n>$<r>$<p>$<salt>$<key>`` with urlsafe base64, made by ``minyi desk
  hash-pin``. Checking one costs ~50 ms of CPU on purpose; it runs in a thread.
- A session is a random cookie (``secrets.token_urlsafe(32)``); Redis keeps only its
  SHA-256 (``keys.DESK_SESSION``), so a copy of the database opens no session. The
  session is bound to its login: the user id, the role and a fingerprint of the PIN hash
  it was opened with (a changed PIN or a removed user ends it). It ends after
  ``session_idle_s`` without a request (the key's TTL, renewed on use) and
  ``session_max_s`` after the login whatever happens.
- A user id with ``LOGIN_FAILS_MAX`` wrong PINs in ``LOGIN_FAILS_WINDOW_S`` is
  refused until the window ends (``keys.DESK_LOGIN_FAILS``): a 4-digit PIN is not
  guessed through the form.
- Every form post carries the session's CSRF token (a hidden field, compared in
  constant time); the cookie is ``HttpOnly`` and ``SameSite=Strict``. The login form,
  before any session, uses a double-submit token (a cookie and the same field).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis

from gateway.config.api import DeskSettings, DeskUser
from gateway.store import keys

# RFC 7914 §2: N = 2^14, r = 8, p = 1 is the interactive-login setting (16 MiB).
SCRYPT_N: Final = 1 << 14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
# hashlib.scrypt's default maxmem is 32 MiB; allow up to N = 2^16 with r = 8.
_MAXMEM: Final = 128 * 1024 * 1024 + 1024 * 1024

# Guessing PINs: after this many wrong ones for an id within the window, the id is
# refused (even with the right PIN) until the window, counted from the first, ends.
LOGIN_FAILS_MAX: Final = 5
LOGIN_FAILS_WINDOW_S: Final = 15 * 60

SESSION_COOKIE: Final = "minyi-desk"
LOGIN_CSRF_COOKIE: Final = "minyi-desk-login"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The stored form of a PIN: ``scrypt$n$r$p$salt$key`` (a fresh salt each time)."""
    if not pin:
        raise ValueError("an empty PIN")
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` is the PIN of the hash ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.urlsafe_b64decode(key)
        got = hashlib.scrypt(
            pin.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):  # a malformed hash (config checks the shape only)
        return False
    return hmac.compare_digest(got, want)


def fingerprint(user: DeskUser) -> str:
    """What binds a session to the credential it was opened with (not the hash)."""
    return hashlib.sha256(f"{user.role}\0{user.id}\0{user.pin_hash}".encode()).hexdigest()[:32]


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (empty never matches)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Session:
    """A live login."""

    user: DeskUser
    csrf: str
    login_at: float
    cookie: str


class Sessions:
    """Login sessions in Redis (see the module's docstring)."""

    def __init__(self, redis: aioredis.Redis, settings: DeskSettings) -> None:
        self.redis = redis
        self.settings = settings

    async def open(self, user: DeskUser) -> Session:
        """A new session for ``user`` (the cookie value is returned once, here)."""
        cookie = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(user, secrets.token_urlsafe(24), now, cookie)
        key = keys.DESK_SESSION.format(digest=_digest(cookie))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "user": user.id,
                    "role": user.role,
                    "csrf": session.csrf,
                    "login_at": f"{now:.3f}",
                    "cred": fingerprint(user),
                },
            )
            pipe.expire(key, max(1, round(self.settings.session_idle_s)))
            await pipe.execute()
        return session

    async def get(self, cookie: str | None) -> Session | None:
        """The session of this cookie, renewed; None when there is none (expired,
        logged out, its user removed or their PIN changed, over its maximum age)."""
        if not cookie or len(cookie) > 128:
            return None
        key = keys.DESK_SESSION.format(digest=_digest(cookie))
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        f = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        user = self.settings.user(f.get("user", ""))
        try:
            login_at = float(f.get("login_at", ""))
        except ValueError:
            login_at = 0.0
        if (
            user is None
            or user.role != f.get("role")
            or not same(fingerprint(user), f.get("cred", ""))
            or time.time() - login_at > self.settings.session_max_s
        ):
            await self.redis.delete(key)
            return None
        await self.redis.expire(key, max(1, round(self.settings.session_idle_s)))
        return Session(user, f.get("csrf", ""), login_at, cookie)

    async def locked(self, user_id: str) -> bool:
        """Whether ``user_id`` had too many wrong PINs in the current window."""
        n = await self.redis.get(keys.DESK_LOGIN_FAILS.format(user=user_id))
        return n is not None and int(n) >= LOGIN_FAILS_MAX

    async def failed(self, user_id: str) -> None:
        """Count a wrong PIN (or an unknown id) against ``user_id``."""
        key = keys.DESK_LOGIN_FAILS.format(user=user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, LOGIN_FAILS_WINDOW_S, nx=True)
            await pipe.execute()

    async def close(self, cookie: str) -> None:
        """End the session (logout)."""
        await self.redis.delete(keys.DESK_SESSION.format(digest=_digest(cookie)))
