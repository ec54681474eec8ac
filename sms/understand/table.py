"""One table of the rules file, checked: every error names the file and the bad key.

`load_rules` and its helpers read the rules file through `Table`, so a typo in a key, a
list of the wrong type or a word listed twice fails at load time with
``rules.toml: reasons.fees.patterns[0]: bad regex: …`` — never in the middle of reading
a reply.
"""

from __future__ import annotations

from typing import Final

from sms.understand.rules import Rating

_KNOWN_RATINGS: Final = frozenset(r.value for r in Rating if r is not Rating.UNKNOWN)


def rules_error(source: str, key: str, problem: str) -> ValueError:
    """The error for a bad key of a rules file."""
    return ValueError(f"{source}: {key}: {problem}")


class Table:
    """A TOML table with the path to it, so every error names the bad key."""

    def __init__(self, data: object, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise rules_error(source, where, "must be a table")
        self.data: dict[str, object] = data
        self.where = where
        self.source = source

    def path(self, key: str) -> str:
        """The dotted path of `key` in this table, for error messages."""
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ValueError:
        """The error for a bad `key` of this table."""
        return rules_error(self.source, self.path(key), problem)

    def only(self, *allowed: str) -> None:
        """Refuse any key not in `allowed` (a typo)."""
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def table(self, key: str) -> Table:
        """A sub-table that must be there."""
        if key not in self.data:
            raise self.fail(key, "missing table")
        return Table(self.data[key], self.path(key), self.source)

    def optional_table(self, key: str) -> Table:
        """A sub-table that may be missing (then empty)."""
        return Table(self.data.get(key, {}), self.path(key), self.source)

    def tables(self, key: str) -> list[Table]:
        """An array of tables ([[key]]), possibly empty."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "must be an array of tables ([[...]])")
        return [Table(v, f"{self.path(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, key: str, default: str | None = None) -> str:
        """A non-empty string."""
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def integer(self, key: str) -> int:
        """A positive integer."""
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, "must be a positive integer")
        return value

    def flag(self, key: str) -> bool:
        """true or false; missing is false."""
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def strings(self, key: str, *, required: bool = True, lower: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings, none listed twice; lower-cased unless told."""
        if key not in self.data and not required:
            return ()
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        # Replies are lower-cased before matching, so words are too (「TD」 → 「td」).
        lowered = tuple(v.lower() if lower else v for v in value)
        for i, v in enumerate(lowered):
            if v in lowered[:i]:
                raise self.fail(key, f"{v!r} is listed twice")
        return lowered

    def rating(self, key: str, *, required: bool = True) -> Rating | None:
        """A rating other than unknown."""
        if key not in self.data and not required:
            return None
        value = self.data.get(key)
        if not isinstance(value, str) or value not in _KNOWN_RATINGS:
            raise self.fail(
                key, f"{value!r} is not a rating (satisfied, basically_satisfied, unsatisfied)"
            )
        return Rating(str(value))
