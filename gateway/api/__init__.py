"""The HTTP API the core system calls (aiohttp): surveys, callbacks, recordings."""
