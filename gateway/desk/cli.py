"""`minyi desk hash-pin`: the stored form of an agent's or supervisor's PIN.

    minyi desk hash-pin            asks for the PIN twice (not echoed)
    echo -n PIN | minyi desk hash-pin --stdin

Prints ``scrypt$...`` for ``pin_hash`` in ``[[api.desk.agents]]`` or
``[[api.desk.supervisors]]``. The PIN itself is never stored nor printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway.desk.auth import hash_pin

PIN_MIN = 4


def main(argv: list[str]) -> int:
    """Entry point of ``minyi desk``; the exit code."""
    parser = argparse.ArgumentParser(prog="minyi desk", description="The desk's logins.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hash-pin", help="print the hash of a PIN for the config file")
    p.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    args = parser.parse_args(argv)
    if args.stdin:
        pin = sys.stdin.read().rstrip("\r\n")
    else:
        pin = getpass.getpass("PIN: ")
        if getpass.getpass("PIN again: ") != pin:
            print("minyi desk: the two PINs differ", file=sys.stderr)
            return 1
    if len(pin) < PIN_MIN:
        print(f"minyi desk: a PIN needs at least {PIN_MIN} characters", file=sys.stderr)
        return 1
    print(hash_pin(pin))
    return 0
