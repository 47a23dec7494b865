"""JSON round trip for the frozen dataclasses the queue and the store carry.

One codec for every value type: dataclasses become objects, Decimal a string
(never a float), datetimes ISO 8601 with their offset, enums their value,
tuples lists. Decoding is driven by the dataclass's type hints, so a model
change needs no codec change.

JSON text goes through orjson (a 10 kB Shopify order parses in a third of
the stdlib's time, and the receiver parses every delivery), falling back to
the stdlib for what orjson refuses and the stdlib takes: integers beyond 64
bits, lone surrogates. Either way ints stay ints, so ids above 2**53 survive.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """Turn a model (or any nesting of them) into JSON-ready data."""
    kind = type(value)
    return value if kind in _PLAIN else _encoder(kind)(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})
Encoder = Callable[[Any], Any]


@cache
def _encoder(kind: type) -> Encoder:
    """An encoding function for values of type ``kind``, built once per type: the receiver
    encodes every order it accepts, and walking isinstance checks per field cost more than the JSON."""
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))

        def encode_dataclass(value: Any) -> dict[str, Any]:
            return {name: to_data(getattr(value, name)) for name in names}

        return encode_dataclass
    if issubclass(kind, enum.Enum):
        return lambda value: value.value
    if issubclass(kind, Decimal):
        return str
    if issubclass(kind, date):  # datetime too
        return lambda value: value.isoformat()
    if issubclass(kind, list | tuple):
        return lambda value: [to_data(item) for item in value]
    if issubclass(kind, dict):
        return lambda value: {str(key): to_data(item) for key, item in value.items()}
    return lambda value: value  # str and int subclasses, and whatever json.dumps may know


def from_data(cls: type[T], data: Any) -> T:
    """Rebuild a value of type ``cls`` from :func:`to_data` output.

    A mismatch raises ValueError naming where, e.g. ``Order.customer.marketing_consent: ...``.
    """
    try:
        return _decoder(cls)(data)
    except _Mismatch as exc:
        raise ValueError(f"{cls.__name__}{''.join(reversed(exc.path))}: {exc.problem}") from None


def dumps(value: Any) -> str:
    """Compact JSON text of :func:`to_data`, keys sorted.

    orjson walks dataclasses, enums, datetimes and tuples itself, in C, to the
    same data :func:`to_data` gives (a test holds the two together); only
    Decimal needs telling. What it refuses goes the slow way.
    """
    try:
        return orjson.dumps(value, default=_decimal_as_text, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a tzinfo it does not know
        return json.dumps(to_data(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _decimal_as_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def loads(cls: type[T], text: str | bytes) -> T:
    return from_data(cls, parse_json(text))


def parse_json(text: str | bytes) -> Any:
    """JSON text to data; ValueError (with the stdlib's message) if it is not JSON."""
    try:
        return orjson.loads(text)
    except ValueError:
        return json.loads(text)


class _Mismatch(Exception):
    """Data that does not fit its type; containers add their part of the path on the way out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


Decoder = Callable[[Any], Any]


@cache
def _decoder(tp: Any) -> Decoder:
    """A decoding function for ``tp``, built once per type: the queue and the store decode
    thousands of events a second, and re-reading type hints each time cost more than the JSON."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)] or [Any]
        decode_inner = _decoder(inner)
        return lambda data: None if data is None else decode_inner(data)
    if tp is Any:
        return lambda data: data
    if origin in (tuple, list):
        decode_item = _decoder(typing.get_args(tp)[0])
        build = tuple if origin is tuple else list

        def decode_sequence(data: Any) -> Any:
            items = []
            for index, item in enumerate(_expect(list, data)):
                try:
                    items.append(decode_item(item))
                except _Mismatch as exc:
                    exc.path.append(f"[{index}]")
                    raise
            return build(items)

        return decode_sequence
    if origin is dict:
        decode_value = _decoder(typing.get_args(tp)[1])

        def decode_mapping(data: Any) -> Any:
            result = {}
            for key, value in _expect(dict, data).items():
                try:
                    result[key] = decode_value(value)
                except _Mismatch as exc:
                    exc.path.append(f".{key}")
                    raise
            return result

        return decode_mapping
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        plan = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp)]

        def decode_dataclass(data: Any) -> Any:
            given = _expect(dict, data)
            kwargs = {}
            for name, decode_field in plan:
                if name in given:
                    try:
                        kwargs[name] = decode_field(given[name])
                    except _Mismatch as exc:
                        exc.path.append(f".{name}")
                        raise
            try:
                return tp(**kwargs)
            except (TypeError, ValueError) as exc:
                raise _Mismatch(str(exc)) from None

        return decode_dataclass
    if isinstance(tp, type) and issubclass(tp, enum.Enum):

        def decode_enum(data: Any) -> Any:
            try:
                return tp(data)
            except ValueError:
                raise _Mismatch(f"{data!r} is not a valid {tp.__name__}") from None

        return decode_enum
    if tp is Decimal:
        return lambda data: Decimal(str(data))
    if tp is datetime:
        return lambda data: datetime.fromisoformat(_expect(str, data))
    if tp is date:
        return lambda data: date.fromisoformat(_expect(str, data))
    if tp in (str, int, bool):
        return lambda data: _expect(tp, data)
    if tp is float:
        return float
    return lambda data: data


def _expect(tp: type, data: Any) -> Any:
    if not isinstance(data, tp):
        raise _Mismatch(f"expected {tp.__name__}, got {type(data).__name__}")
    return data
