"""SMPP 3.4: the sans-IO codec, and the client on aiosmpplib (binds, window, throttling)."""
