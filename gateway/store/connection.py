"""Connecting to Redis — a standalone server (``redis_url``) or the master that Sentinel
names (``[redis] sentinels`` or a ``redis+sentinel://`` URL) — and never writing to a
node that is not the master.

What redis-py does, and what this module adds:

- ``SentinelConnectionPool`` asks the sentinels for the master's address each time it
  opens a connection, and closes its idle connections when the address changed. It is
  not a blocking pool: a burst past ``max_connections`` would raise
  MaxConnectionsError. :class:`SentinelBlockingPool` is both (the process's blocking
  pool, as for a standalone server).
- ``SentinelManagedConnection`` turns a ``READONLY`` reply (the master it talks to was
  demoted) into a ConnectionError after closing the connection, so the command is sent
  again on a new connection, which asks the sentinels again. It does nothing for
  ``-MASTERDOWN`` (a replica whose link to its master is down), nor does a standalone
  connection for either (an address moved by a virtual IP to another server would
  keep the old connections). And it connects to whatever the sentinels say: for a few
  seconds after a failover a sentinel may still name the old master, and an old
  master back from its AOF calls itself master until Sentinel makes it a replica
  (about ten seconds): writes it took would be lost.
- Here every connection, whatever its kind, asks the node ``INFO replication`` when it
  connects and refuses one whose role is not ``master`` (a ConnectionError: the
  command waits and retries, the API answers 503), and treats ``READONLY`` and
  ``MASTERDOWN`` on any connection as a lost master (closed, ConnectionError, retried).
  It then asks the master for its era (``minyi_era``, keys.ERA): a restarted master or
  a promoted replica gets a new one before any write of ours reaches it.

A connection that failed is opened again and its command sent again, a few times
(REDIS_RETRIES, over 0.75 s): a Redis restart or a failover shorter than that is not
even seen; a longer one is an outage the workers wait out.

What survives a failover is gateway/store/replication.py's business (WAIT).
"""

from __future__ import annotations

import time
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway import lifecycle
from gateway.config import RedisSettings, sentinel_url
from gateway.store import library
from gateway.store.streams import text

# Per process; blocking reads hold one each (sender, inbound, webhooks per endpoint).
REDIS_CONNECTIONS: Final = 64
# A command whose connection failed is sent again on a new one, this many times, after
# 0.05, 0.1, 0.2, 0.4 s: a stale connection costs nothing, a restart of Redis that takes
# a second is bridged, a longer outage fails the command (the API answers 503, the
# workers wait it out).
REDIS_RETRIES: Final = 4
REDIS_RETRY_BASE_S: Final = 0.025
REDIS_RETRY_CAP_S: Final = 0.5
# A sentinel that does not answer within this is skipped (the next one is asked).
SENTINEL_TIMEOUT_S: Final = 1.0
# Opening a connection to the master: a host that is gone must not hold the command
# for the kernel's connect timeout (minutes).
CONNECT_TIMEOUT_S: Final = 5.0


# A replica acknowledges the master's stream every second (REPLCONF ACK): one silent
# longer than this is not keeping up (hung, or cut off), whatever its state says.
REPLICA_SILENT_S: Final = 5


class NotMaster(RedisConnectionError):
    """The node reached is not (or no longer) the master: nothing is written to it."""


class _MasterOnly(AbstractConnection):
    """Mixed into each redis-py connection class the gateway uses (see the module
    docstring): the role is checked on connect, a lost master is a lost connection."""

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)
        await self.send_command("INFO", "server", "replication", check_health=False)
        info = dict(
            line.split(":", 1)
            for line in text(await super().read_response()).splitlines()
            if ":" in line
        )
        role = info.get("role", "?").strip()
        if role != "master":
            raise NotMaster(f"{self._host_error()} is a {role}, not the master: not used")
        run_id, replid = info.get("run_id", "").strip(), info.get("master_replid", "").strip()
        await self.send_command("FCALL", "minyi_era", "0", run_id, replid, check_health=False)
        try:
            await self.read_response()
        except ResponseError as exc:
            # A Redis without the library (new, emptied, or an older version's): the
            # store loads it, and the first event makes the era.
            if not library.function_missing(exc):
                raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except (ReadOnlyError, MasterDownError) as exc:
            await self.disconnect()
            raise NotMaster(f"{self._host_error()} is no longer the master ({exc})") from exc


class _Plain(_MasterOnly, Connection):
    pass


class _Tls(_MasterOnly, SSLConnection):
    pass


class _Unix(_MasterOnly, UnixDomainSocketConnection):
    pass


class _SentinelManaged(_MasterOnly, SentinelManagedConnection):
    pass


class _SentinelManagedTls(_MasterOnly, SentinelManagedSSLConnection):
    pass


class SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's pool under Sentinel, blocking when all connections are in use.

    A connection opened to a master that is no longer the one Sentinel names is
    closed when it is taken from the pool, and opened again to the new one (redis-py
    closes only the idle ones when it learns of the new address: a connection in use
    then would be used again and again)."""

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        """Connected, and to the master Sentinel last named."""
        address = self.master_address
        if (
            address is not None
            and isinstance(connection, Connection)
            and connection.is_connected
            and (connection.host, connection.port) != tuple(address)
        ):
            await connection.disconnect()
        await super().ensure_connection(connection)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        """Close the connections; a full close (the client's) also closes the clients
        to the sentinels (redis-py leaves them open)."""
        await super().disconnect(inuse_connections)
        if inuse_connections:
            await self.sentinel_manager.aclose()


async def rediscover(redis: aioredis.Redis) -> None:
    """Ask the sentinels for the master again (a write that no replica confirms may be
    on a master that was demoted): when it changed, the connections to the old one are
    closed as they are next used. Nothing to do for a standalone server."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        await pool.get_master_address()  # type: ignore[no-untyped-call]


def _retry() -> dict[str, Any]:
    return {
        "retry": Retry(
            ExponentialBackoff(cap=REDIS_RETRY_CAP_S, base=REDIS_RETRY_BASE_S), REDIS_RETRIES
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect(
    url: str,
    options: RedisSettings | None = None,
    *,
    decode_responses: bool = True,
    max_connections: int = REDIS_CONNECTIONS,
) -> aioredis.Redis:
    """The process's Redis client (no connection is made yet): ``url`` for a standalone
    server, or the master the sentinels of ``options`` (or of a ``redis+sentinel://``
    ``url``) name. Only ever writes to a master (see the module docstring)."""
    options = options or RedisSettings()
    if not options.sentinel and url.partition("://")[0].endswith("+sentinel"):
        options = RedisSettings(**{**_fields(options), **sentinel_url(url)})
    common: dict[str, Any] = {
        "decode_responses": decode_responses,
        "health_check_interval": 10,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        **_retry(),
    }
    if not options.sentinel:
        # A blocking pool: a burst of concurrent work waits for a free connection
        # instead of failing with MaxConnectionsError. A connection that fails is
        # released back to the pool (redis-py does it on every error), so an outage
        # never leaks connections and the waiters go on once Redis is back.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=None, **common
        )
        checked: dict[type[AbstractConnection], type[AbstractConnection]] = {
            Connection: _Plain,
            SSLConnection: _Tls,
            UnixDomainSocketConnection: _Unix,
        }
        pool.connection_class = checked[pool.connection_class]
        return aioredis.Redis.from_pool(pool)
    tls = _tls(options)
    sentinel = Sentinel(
        list(options.sentinels),
        sentinel_kwargs={
            "username": options.sentinel_username or None,
            "password": options.sentinel_password or None,
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            **tls,
        },
    )
    sentinel_pool = SentinelBlockingPool(  # type: ignore[no-untyped-call]
        options.master_name,
        sentinel,
        connection_class=_SentinelManagedTls if options.tls else _SentinelManaged,
        max_connections=max_connections,
        timeout=None,
        db=options.db,
        username=options.username or None,
        password=options.password or None,
        **{k: v for k, v in tls.items() if k != "ssl"},
        **common,
    )
    return aioredis.Redis.from_pool(sentinel_pool)


def _fields(options: RedisSettings) -> dict[str, Any]:
    return {k: getattr(options, k) for k in RedisSettings.__dataclass_fields__}


def _tls(options: RedisSettings) -> dict[str, Any]:
    if not options.tls:
        return {}
    out: dict[str, Any] = {"ssl": True}
    if options.tls_ca_file:
        out["ssl_ca_certs"] = options.tls_ca_file
    if options.tls_cert_file:
        out["ssl_certfile"] = options.tls_cert_file
        out["ssl_keyfile"] = options.tls_key_file
    return out


def master_address(redis: aioredis.Redis) -> str:
    """The address the client writes to now ("host:port"; under Sentinel the master
    it last learnt of, "" before the first connection)."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        address = cast(Any, pool.master_address)
        return f"{address[0]}:{address[1]}" if address else ""
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '')}:{kwargs.get('port', '')}"


async def health(redis: aioredis.Redis, wait_replicas: int) -> dict[str, Any]:
    """What ``/healthz`` says about Redis: the master it reached, its role, its replicas
    and their links, and ``ok`` — whether writes succeed now (the master is reachable,
    is a master, and has the ``wait_replicas`` replicas online that every write waits
    for). Never raises."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"ok": False, "wait_replicas": wait_replicas}
    try:
        info = await redis.info("replication")
    except Exception as exc:
        out["error"] = lifecycle.describe(exc)
        out["ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return out
    out["ms"] = round((time.perf_counter() - t0) * 1000, 2)
    out["address"] = master_address(redis)
    out["role"] = info.get("role", "?")
    offset = int(info.get("master_repl_offset", 0))
    replicas = []
    for key, value in sorted(info.items()):
        if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict):
            replicas.append(
                {
                    "address": f"{value.get('ip')}:{value.get('port')}",
                    "state": value.get("state"),
                    "lag_bytes": max(0, offset - int(value.get("offset", 0))),
                    "last_ack_s": value.get("lag"),
                }
            )
    out["replicas"] = replicas
    online = sum(
        1
        for r in replicas
        if r["state"] == "online" and int(r["last_ack_s"] or 0) <= REPLICA_SILENT_S
    )
    if out["role"] != "master":
        out["error"] = f"the node is a {out['role']}, not the master"
    elif online < wait_replicas:
        out["error"] = (
            f"{online} replica(s) online and acknowledging, writes wait for {wait_replicas}: "
            "they would fail"
        )
    else:
        out["ok"] = True
    return out
