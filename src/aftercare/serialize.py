"""JSON round trip for the frozen dataclasses the queue and the store carry.

One codec for every value type: dataclasses become objects, Decimal a string
(never a float), datetimes ISO 8601 with their offset, enums their value,
tuples lists. Decoding is driven by the dataclass's type hints, so a model
change needs no codec change.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """Turn a model (or any nesting of them) into JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def from_data(cls: type[T], data: Any) -> T:
    """Rebuild a value of type ``cls`` from :func:`to_data` output."""
    return _decode(cls, data, cls.__name__)


def dumps(value: Any) -> str:
    return json.dumps(to_data(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def loads(cls: type[T], text: str | bytes) -> T:
    return from_data(cls, json.loads(text))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            return _decode(arg, data, where)
    if tp is Any:
        return data
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(_expect(list, data, where)))
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(_expect(list, data, where))]
    if origin is dict:
        _key, item = typing.get_args(tp)
        return {k: _decode(item, v, f"{where}.{k}") for k, v in _expect(dict, data, where).items()}
    if dataclasses.is_dataclass(tp):
        fields = _expect(dict, data, where)
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in fields:
                kwargs[f.name] = _decode(hints[f.name], fields[f.name], f"{where}.{f.name}")
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise ValueError(f"{where}: {data!r} is not a valid {tp.__name__}") from None
    if tp is Decimal:
        return Decimal(str(data))
    if tp is datetime:
        return datetime.fromisoformat(_expect(str, data, where))
    if tp is date:
        return date.fromisoformat(_expect(str, data, where))
    if tp in (str, int, bool):
        return _expect(tp, data, where)
    if tp is float:
        return float(data)
    return data


def _expect(tp: type, data: Any, where: str) -> Any:
    if not isinstance(data, tp):
        raise ValueError(f"{where}: expected {tp.__name__}, got {type(data).__name__}")
    return data
