"""`minyi parse`: show how the gateway reads a citizen's reply.

    minyi parse "3 出警太慢"              # readable summary
    minyi parse --json "态度很好，但是结果不满意"
    minyi parse --json - < replies.txt    # one reply per line in, one JSON object per line out
    minyi parse --rules my.toml "满意"    # try an edited rules file before it goes live

The `minyi` command (gateway/cli.py) hands everything after the word ``parse`` to
`main`; ``python -m sms.understand.cli`` runs it directly.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable
from typing import TextIO

from sms.understand import Understanding, understand
from sms.understand.rules import Rules
from sms.understand.rules.load import default_rules, load_rules

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for a bad command line; also a bad rules file


def json_line(reading: Understanding) -> str:
    """One reading as one line of JSON: fixed key order, UTF-8 text, no spaces."""
    return json.dumps(reading.to_json(), ensure_ascii=False, separators=(",", ":"))


def main(argv: list[str]) -> int:
    """Run `minyi parse` with `argv` (the arguments after ``parse``); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="minyi parse",
        description="Show how a citizen's reply is read: rating, how sure, the cues, reasons, "
        "praise, opt-out.",
        epilog="Use -- before a reply that starts with '-' (minyi parse -- -TD).",
    )
    parser.add_argument("text", help="the reply; '-' reads one reply per line from stdin")
    parser.add_argument("--json", action="store_true", help="print JSON (one object per line)")
    parser.add_argument("--rules", metavar="FILE", help="rules file (default: the packaged one)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        rules = default_rules() if args.rules is None else load_rules(args.rules)
    except (ValueError, OSError) as exc:
        print(f"minyi parse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = _utf8(sys.stdout)
    if args.text == "-":
        _parse_lines(_lines(sys.stdin), rules, out, as_json=args.json)
    else:
        _emit(understand(_clean(args.text), rules), rules, out, as_json=args.json)
    out.flush()
    return EXIT_OK


def _parse_lines(lines: Iterable[str], rules: Rules, out: TextIO, *, as_json: bool) -> None:
    for i, line in enumerate(lines):
        if not as_json and i:
            out.write("\n")
        _emit(understand(line, rules), rules, out, as_json=as_json)
        # Flushed per reply so a program driving `minyi parse --json -` through a pipe
        # gets each answer as soon as it sends the line.
        out.flush()


def _emit(reading: Understanding, rules: Rules, out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(json_line(reading) + "\n")
        return
    labels = rules.reason_labels
    reasons = ", ".join(f"{r} ({labels.get(r, r)})" for r in reading.reasons) or "-"
    lines = [
        f"text:      {reading.text}",
        f"rating:    {reading.rating.value}",
        f"reasons:   {reasons}",
        f"praise:    {', '.join(reading.praise_words) if reading.praise else '-'}",
        f"opt-out:   {'yes' if reading.opt_out else 'no'}",
        f"confidence: {reading.confidence.value}",
        f"cues:      {', '.join(reading.cues) or '-'}",
    ]
    if reading.correction:
        lines.append("correction: yes (corrects an earlier reply)")
    if reading.clarify:
        lines.append("clarify:   yes (unknown or unclear: worth one clarifying question)")
    if reading.hint:
        lines.append(f"hint:      {reading.hint}")
    lines.append("why:")
    lines.extend(f"  - {step}" for step in reading.explanation or ("no rule fired",))
    out.write("\n".join(lines) + "\n")


def _lines(stream: TextIO) -> Iterable[str]:
    """Replies from stdin: one per line, line ends removed, undecodable bytes replaced."""
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(encoding="utf-8", errors="replace")
    for line in stream:
        yield _clean(line.rstrip("\r\n"))


def _clean(text: str) -> str:
    # Bytes that are not UTF-8 reach argv as lone surrogates; they cannot be printed.
    return text.encode("utf-8", "replace").decode("utf-8")


def _utf8(stream: TextIO) -> TextIO:
    """stdout, writing UTF-8 whatever the locale says (servers often run with LANG=C)."""
    if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower() not in ("utf-8", "utf8"):
        stream.reconfigure(encoding="utf-8")
    return stream


if __name__ == "__main__":
    # `python -m sms.understand.cli parse TEXT` works too: a leading "parse" is dropped
    # when something follows it.
    cli_args = sys.argv[1:]
    if len(cli_args) > 1 and cli_args[0] == "parse":
        cli_args = cli_args[1:]
    raise SystemExit(main(cli_args))
