"""The declared fields of a decision's ``data`` (issue 12 §5): each typed data model names its
fields once, so a key it does not name is refused and a client can build the decision's form
from the JSON schema of each shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

# The JSON schema of the values most fields take.
MONEY_SCHEMA: Mapping[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
        {"type": "number", "minimum": 0},
    ],
    "description": 'an amount in yuan with at most two decimals, e.g. "1000.00"',
}
RATE_SCHEMA: Mapping[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^(0(\.\d{1,6})?|1(\.0{1,6})?)$"},
        {"type": "number", "minimum": 0, "maximum": 1},
    ],
    "description": 'a yearly rate as a fraction with at most six decimals, e.g. "0.12"',
}
DATE_SCHEMA: Mapping[str, Any] = {"type": "string", "format": "date"}


def text_schema(max_length: int, *, min_length: int = 0) -> Mapping[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    return schema


def choice_schema(values: Iterable[str]) -> Mapping[str, Any]:
    return {"type": "string", "enum": [str(v) for v in values]}


@dataclass(frozen=True)
class DataField:
    """One key a decision's ``data`` may carry: its JSON schema and whether it is required
    (a requirement that depends on another field's value is the model's ``parse``'s to say)."""

    name: str
    schema: Mapping[str, Any]
    required: bool = False
    description: str = ""

    def json_schema(self) -> dict[str, Any]:
        out = dict(self.schema)
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class DataShape:
    """One form of a decision's ``data``: the fields it may carry and nothing else."""

    title: str
    fields: tuple[DataField, ...] = field(default_factory=tuple)

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "title": self.title,
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "additionalProperties": False,
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            schema["required"] = required
        return schema


class TypedData:
    """A data model whose fields are declared (``FIELDS``); ``shapes`` are the forms its data
    may take for one decision (more than one when the model parses alternatives)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = ()

    @classmethod
    def shapes(cls, decision: str) -> tuple[DataShape, ...]:
        return (DataShape(cls.__name__, cls.FIELDS),)


def shapes_schema(shapes: tuple[DataShape, ...]) -> dict[str, Any] | None:
    """The JSON schema of a decision's data (None: the decision takes no data)."""
    if not shapes:
        return None
    if len(shapes) == 1:
        return shapes[0].json_schema()
    return {"anyOf": [s.json_schema() for s in shapes]}


def refuse_unknown_keys(
    label: str, shapes: tuple[DataShape, ...], data: Mapping[str, Any] | None
) -> None:
    """ValueError naming the first key of ``data`` no shape declares (``label``: the task kind
    and the decision), or that the decision takes no data at all."""
    if not data:
        return
    if not shapes:
        raise ValueError(f"data: {label} takes no data")
    known = {name for shape in shapes for name in shape.names()}
    for key in data:
        if key not in known:
            raise ValueError(f"data.{key[:64]}: is not a field of {label}")
