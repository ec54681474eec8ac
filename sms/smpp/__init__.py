"""SMPP 3.4: its numbers (constants), the sans-IO codec (pdu, codec, errors), the pure
submit window (window) and the client on aiosmpplib (esme, client)."""
