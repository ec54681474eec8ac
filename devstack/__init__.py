"""The local stack that `make demo`, the tests and the benches start: Redis, the SMS center
simulator, the gateway, Asterisk 22. Tools, not product."""
