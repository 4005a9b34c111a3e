"""Settings problems a person can act on: every one at once, one line each, never a value.

pydantic stops at a model's field errors before its cross-field rules run, and its messages
print the offending input (a secret, say). `load_settings` collects both kinds, says for each
variable what to set, and raises `SettingsInvalid`, whose text holds no value at all.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing to fix: the environment variable(s) and what to do about them."""

    variables: str  # e.g. "SECRET_KEY", or "LLM_BASE_URL, LLM_MODEL"
    fix: str

    def __str__(self) -> str:
        return f"{self.variables}: {self.fix}"


class SettingsProblems(ValueError):
    """Raised by the settings' cross-field rules; pydantic keeps it in the error's context."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


class SettingsInvalid(Exception):
    """Nothing can start with these settings. The text lists every problem, one per line,
    and never a value (the settings hold secrets)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        lines = [f"{head} (environment variables, or .env in the working directory):"]
        return "\n".join([*lines, *(f"  {problem}" for problem in self.problems)])


class NotJson(str):
    """A list or object setting whose text is not JSON: kept as text so that pydantic reports
    it with every other problem (pydantic-settings would stop at the first one)."""


def lenient_json(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
    """Make an environment or .env source keep undecodable JSON as `NotJson` text."""
    decode: Callable[..., Any] = source.decode_complex_value

    def decode_or_keep(field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return decode(field_name, field, value)
        except ValueError:
            return NotJson(value)

    # Replaces the decoder of this one source object, not of its class.
    source.decode_complex_value = decode_or_keep  # type: ignore[method-assign]
    return source


def load_settings(cls: type[_M]) -> _M:
    """`cls()` from the environment, or `SettingsInvalid` with every problem at once."""
    try:
        return cls()
    except ValidationError as exc:
        first = exc
    problems, failing = describe(cls, first)
    if failing and len(problems) == len(failing):
        # Only fields failed, so the cross-field rules never ran: run them with those fields at
        # their defaults, and keep what they say about the other variables.
        defaults = {
            name: cls.model_fields[name].get_default(call_default_factory=True) for name in failing
        }
        try:
            cls(**defaults)
        except ValidationError as again:
            named = {name.upper() for name in failing}
            more, _ = describe(cls, again)
            problems += [p for p in more if not named & set(p.variables.split(", "))]
    raise SettingsInvalid(problems) from None


def describe(cls: type[BaseModel], exc: ValidationError) -> tuple[list[Problem], list[str]]:
    """Problems in `exc` (one per variable), and the names of the fields that failed."""
    problems: list[Problem] = []
    failing: list[str] = []
    for error in exc.errors(include_url=False):
        found = (error.get("ctx") or {}).get("error")
        if isinstance(found, SettingsProblems):
            problems += found.problems
            continue
        name = str(error["loc"][0]) if error["loc"] else ""
        if name not in cls.model_fields:
            problems.append(Problem(name.upper() or "settings", "not valid: check it"))
            continue
        if name in failing:
            continue  # one line per variable, whichever of its items failed
        failing.append(name)
        field = cls.model_fields[name]
        problems.append(Problem(name.upper(), _fix(field, error.get("input"))))
    return problems, failing


def _fix(field: FieldInfo, given: object) -> str:
    kind = _kind(field.annotation)
    wrong = "is not valid JSON" if isinstance(given, NotJson) else "is not valid"
    return f"{wrong}: set {kind}{_bounds(field)}, {_default(field)}"


def _kind(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is Path:
        return "a folder path"
    if origin is list:
        return 'a JSON list of strings, like ["a", "b"]'
    if origin is dict:
        return "a JSON object (see the README's table)"
    if annotation is SecretStr:
        return "the secret as text"
    return "text"


def _bounds(field: FieldInfo) -> str:
    words = (
        (annotated_types.Ge, "ge", "≥"),
        (annotated_types.Gt, "gt", ">"),
        (annotated_types.Le, "le", "≤"),
        (annotated_types.Lt, "lt", "<"),
    )
    found = [
        f"{word} {getattr(item, attr)}"
        for item in field.metadata
        for kind, attr, word in words
        if isinstance(item, kind)
    ]
    return f" {' and '.join(found)}" if found else ""


def _default(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "or leave it unset"
    if isinstance(default, SecretStr):
        return "or unset it for the development default"
    if isinstance(default, list | dict):
        return f"or unset it for the default, {json.dumps(default, ensure_ascii=False)}"
    return f"or unset it for the default, {default}"
