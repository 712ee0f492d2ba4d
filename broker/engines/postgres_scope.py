"""The PostgreSQL scope grammar: ``postgres:<database>:<schema>.<table>:<PRIVILEGE>``.

A scope names exactly one privilege on one table (or, when policy allows it, on every table of one
schema with ``<schema>.*``). Names are exact catalog names, case preserved, never folded. A name that
contains ``:``, ``.``, ``"``, ``*``, whitespace or is empty is written in double quotes with ``""``
for a quote, as in SQL: ``postgres:"my:db":"odd.schema"."tab""le":SELECT``. Parsing never touches
SQL; names are only ever rendered with ``psycopg.sql.Identifier`` (see ``postgres_roles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from jitsec.broker import errors

from jitsec.kernel.redaction import shown

SCOPE_ENGINE = "postgres"
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1 in a default PostgreSQL build
_SPECIAL = frozenset(':."*')


class Privilege(Enum):
    """The table privileges the engine grants; anything else is refused before SQL is built."""

    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    TRUNCATE = "TRUNCATE"
    REFERENCES = "REFERENCES"
    TRIGGER = "TRIGGER"


class ScopeError(errors.ScopeError):
    """A scope string that the grammar or the policy refuses; the message says why (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class PostgresScope:
    """One privilege on one table, or on all tables of a schema when ``table`` is None."""

    database: str
    schema: str
    table: str | None
    privilege: Privilege

    @property
    def is_schema_wide(self) -> bool:
        return self.table is None

    def render(self) -> str:
        """The canonical text of this scope (``parse_scope(s.render()) == s``)."""
        target = "*" if self.table is None else quote_name(self.table)
        return (
            f"{SCOPE_ENGINE}:{quote_name(self.database)}:{quote_name(self.schema)}.{target}"
            f":{self.privilege.value}"
        )


def quote_name(name: str) -> str:
    """A name as the grammar writes it: bare when unambiguous, else double-quoted."""
    if name and not any(ch in _SPECIAL or ch.isspace() for ch in name):
        return name
    return '"' + name.replace('"', '""') + '"'


def is_postgres_scope(text: str) -> bool:
    return text.startswith(SCOPE_ENGINE + ":")


def parse_scope(text: str, *, allow_schema_wide: bool = False) -> PostgresScope:
    """Parse one scope; raise ScopeError naming the problem (never echoing SQL)."""
    reader = _Reader(text)
    engine = reader.bare_word()
    if engine != SCOPE_ENGINE:
        raise ScopeError(f"scope {shown(text)!r} does not start with '{SCOPE_ENGINE}:'")  # maybe a secret
    reader.expect(":")
    database = reader.name("database")
    reader.expect(":")
    schema = reader.name("schema")
    reader.expect(".")
    table: str | None
    if reader.peek() == "*":
        reader.advance()
        table = None
    else:
        table = reader.name("table")
    reader.expect(":")
    privilege_text = reader.bare_word()
    if not reader.at_end():
        raise ScopeError(f"scope {text!r} has trailing text at position {reader.position}")
    try:
        privilege = Privilege(privilege_text)
    except ValueError:
        known = ", ".join(p.value for p in Privilege)
        raise ScopeError(f"scope {text!r}: unknown privilege {privilege_text!r} (known: {known})") from None
    if table is None and not allow_schema_wide:
        raise ScopeError(f"scope {text!r}: schema-wide grants ('{schema}.*') are not allowed by policy")
    return PostgresScope(database=database, schema=schema, table=table, privilege=privilege)


class _Reader:
    """A cursor over the scope text; small enough that a parser generator would be noise."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def advance(self) -> None:
        self.position += 1

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            where = f"at position {self.position}, found {found}"
            raise ScopeError(f"scope {self.text!r}: expected {char!r} {where}")
        self.advance()

    def bare_word(self) -> str:
        start = self.position
        while not self.at_end() and self.peek() not in _SPECIAL and not self.peek().isspace():
            self.advance()
        return self.text[start : self.position]

    def name(self, what: str) -> str:
        value = self._quoted() if self.peek() == '"' else self.bare_word()
        if not value:
            raise ScopeError(f"scope {self.text!r}: empty {what} name at position {self.position}")
        if "\x00" in value:
            raise ScopeError(f"scope {self.text!r}: the {what} name contains a NUL character")
        if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise ScopeError(
                f"scope {self.text!r}: the {what} name is longer than {MAX_IDENTIFIER_BYTES} bytes"
            )
        return value

    def _quoted(self) -> str:
        self.advance()  # opening quote
        parts: list[str] = []
        while True:
            if self.at_end():
                raise ScopeError(f"scope {self.text!r}: unterminated quoted name")
            char = self.peek()
            self.advance()
            if char != '"':
                parts.append(char)
            elif self.peek() == '"':
                parts.append('"')
                self.advance()
            else:
                return "".join(parts)
