"""One JSON codec per record: the record's own fields, read from its type hints, plus a schema id.

    INCIDENT = Codec(Incident, "jitsec.incident/1")
    INCIDENT.to_json(incident)    # '{"schema":"jitsec.incident/1","incident_id":…}'
    INCIDENT.from_json(text)      # Incident, or CodecError naming the field

Enums travel as their values, tuples as lists, nested records as objects; a field typed with a union of
records (an ``Origin``) carries a ``kind`` tag. Decoding checks the schema id, converts every field to
its declared type and fills absent fields from their defaults, so an older record with fewer fields
still reads. A field a record does not declare is ignored (a newer writer's addition).

Records hold no plaintext secret by construction; the codec renders what it is given.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NONE = type(None)


class CodecError(ValueError):
    """A document that is not a valid record of the codec's schema; the message names the field."""


class Codec(Generic[T]):
    """Encodes and decodes one frozen dataclass type under one schema id."""

    def __init__(self, record: type[T], schema: str, *, tag: str = "schema") -> None:
        if not dataclasses.is_dataclass(record):
            raise TypeError(f"{record.__name__} is not a dataclass")
        self.record = record
        self.schema = schema
        self.tag = tag
        self._hints = typing.get_type_hints(record)
        self._fields = [spec for spec in dataclasses.fields(record) if spec.init]

    def to_dict(self, value: T) -> dict[str, Any]:
        """JSON-ready: the schema id first, then every field in declaration order."""
        out: dict[str, Any] = {self.tag: self.schema}
        for spec in self._fields:
            out[spec.name] = _encode(getattr(value, spec.name))
        return out

    def to_json(self, value: T) -> str:
        """Compact, key-stable JSON on one line."""
        return json.dumps(self.to_dict(value), separators=(",", ":"), ensure_ascii=False)

    def from_dict(self, data: Mapping[str, Any]) -> T:
        if not isinstance(data, Mapping) or data.get(self.tag) != self.schema:
            found = data.get(self.tag) if isinstance(data, Mapping) else type(data).__name__
            raise CodecError(f"not a {self.schema} record ({self.tag}={found!r})")
        return self._build(data, self.schema)

    def from_json(self, text: str | bytes) -> T:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CodecError(f"not JSON: {error}") from None
        return self.from_dict(data)

    def _build(self, data: Mapping[str, Any], where: str) -> T:
        values: dict[str, Any] = {}
        for spec in self._fields:
            if spec.name not in data:
                if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                    raise CodecError(f"{where}: field {spec.name!r} is missing")
                continue
            values[spec.name] = _decode(data[spec.name], self._hints[spec.name], f"{where}.{spec.name}")
        return self.record(**values)


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"kind": _kind(type(value))}
        out.update({spec.name: _encode(getattr(value, spec.name)) for spec in dataclasses.fields(value)})
        return out
    return value


def _kind(record: type) -> str:
    """The tag of a record inside a union: its class name without the union's common suffix."""
    name = record.__name__
    return name.removesuffix("Origin").lower() or name.lower()


def _decode(value: Any, hint: Any, where: str) -> Any:  # noqa: PLR0911 - one branch per kind of type
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and _NONE in options:
            return None
        records = [option for option in options if dataclasses.is_dataclass(option)]
        if records:
            return _decode_tagged(value, records, where)
        for option in options:
            if option is not _NONE:
                return _decode(value, option, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise CodecError(f"{where}: expected a list, got {type(value).__name__}")
        item = typing.get_args(hint)[0]
        return tuple(_decode(entry, item, f"{where}[{index}]") for index, entry in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not a {hint.__name__}") from None
    if dataclasses.is_dataclass(hint):
        return _decode_tagged(value, [hint], where)
    return _scalar(value, hint, where)


def _decode_tagged(value: Any, records: list[Any], where: str) -> Any:
    if not isinstance(value, Mapping):
        raise CodecError(f"{where}: expected an object, got {type(value).__name__}")
    by_kind = {_kind(record): record for record in records}
    record = by_kind.get(value.get("kind", "")) if len(records) > 1 else records[0]
    if record is None:
        raise CodecError(f"{where}: kind {value.get('kind')!r} is not one of {sorted(by_kind)}")
    hints = typing.get_type_hints(record)
    values = {spec.name: _decode(value[spec.name], hints[spec.name], f"{where}.{spec.name}")
              for spec in dataclasses.fields(record) if spec.name in value}
    try:
        return record(**values)
    except TypeError as error:
        raise CodecError(f"{where}: {error}") from None


_SCALARS: dict[Any, tuple[type, ...]] = {
    str: (str,), int: (int,), float: (int, float), bool: (bool,), Any: (object,), _NONE: (_NONE,),
}


def _scalar(value: Any, hint: Any, where: str) -> Any:
    accepted = _SCALARS.get(hint)
    if accepted is None:
        raise TypeError(f"{where}: the codec cannot handle fields of type {hint!r}")
    if not isinstance(value, accepted) or (hint is int and isinstance(value, bool)):
        raise CodecError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")
    if hint is float and isinstance(value, int | float):
        return float(value)  # JSON writes 2.0 as 2
    return value
