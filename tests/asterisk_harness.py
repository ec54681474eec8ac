"""The tests' name for gateway.asterisk_local (the Asterisk the tests, the demo and the
benchmarks run)."""

from gateway.asterisk_local import *  # noqa: F403
from gateway.asterisk_local import __all__ as __all__
