"""HTTPS on the API: the server's TLS context from ``[api] tls_cert``/``tls_key``.

aiohttp serves TLS itself when its site gets an ``ssl.SSLContext``; no proxy is
needed (docs/operations.md shows the reverse-proxy alternative). The context is made
once at start (gateway/startup.py), so a missing file, a key that does not fit the
certificate or an encrypted key stops the gateway with one line naming the setting,
before anything listens.

The floor is TLS 1.2 (RFC 8996 deprecates 1.0 and 1.1; RFC 9325 §3.1.1: support 1.2,
prefer 1.3); Python's default server ciphers are kept. The key must be unencrypted:
a passphrase would have to sit next to it in the same config anyway.
"""

from __future__ import annotations

import ssl

from gateway.config import ApiSettings, ConfigError

__all__ = ["server_context"]


def _no_passphrase() -> str:
    # load_cert_chain would otherwise prompt on the terminal for an encrypted key
    raise ssl.SSLError("the private key is encrypted; give an unencrypted key")


def server_context(api: ApiSettings) -> ssl.SSLContext | None:
    """The API's TLS server context, or None when ``tls_cert`` is not set.

    Raises ConfigError naming ``api.tls_cert`` or ``api.tls_key`` when the files cannot
    be read or do not belong together.
    """
    if api.tls_cert is None or api.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for key, path in (("tls_cert", api.tls_cert), ("tls_key", api.tls_key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"api.{key}", f"cannot be read: {exc.strerror} ({path})") from None
    try:
        context.load_cert_chain(api.tls_cert, api.tls_key, password=_no_passphrase)
    except ssl.SSLError as exc:
        why = getattr(exc, "reason", None) or exc
        raise ConfigError(
            "api.tls_key",
            f"does not load with api.tls_cert ({why}): the certificate must be PEM and the "
            "key its unencrypted PEM private key",
        ) from None
    return context
