"""What the read compiler works from: the selected fields (`Sel`) and, per GraphQL object type,
where its data lives (`Source`). The schema layer declares a `Source` next to each Strawberry
type the compiled path covers and hands them down; this package never imports src.schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    case,
    cast,
    func,
    literal_column,
)


class NotCompilable(Exception):
    """The selection needs something the declarations do not cover: the interpreter answers."""


@dataclass(frozen=True)
class Sel:
    """One selected field: response key, field name, argument sources, sub-selections, and the
    object type it is selected on (what `__typename` answers)."""

    key: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)  # value, or ("$", variable name)
    children: tuple[Sel, ...] = ()
    on: str = ""


class Scope:
    """What a rule may read besides the row: the viewer and the one clock, as parameters."""

    def __init__(
        self,
        viewer: ColumnElement[Any],
        now: ColumnElement[Any],
        today: Any,
        per_request: Callable[[Callable[[Any], Any], Any], ColumnElement[Any]] | None = None,
    ) -> None:
        self.viewer = viewer  # the viewer's id (uuid)
        self.now = now  # services.clock(), timestamptz
        self.today = today  # the Asia/Shanghai date of that clock
        self._per_request = per_request

    def per_request(self, value: Callable[[RequestInfo], Any], type_: Any) -> ColumnElement[Any]:
        """A parameter bound to `value(info)` for each request: what the request alone decides
        (a header, a setting, a function of the clock's instant) never enters a cached plan."""
        if self._per_request is None:
            raise NotCompilable("no per-request values here")
        return self._per_request(value, type_)


@dataclass(frozen=True)
class RequestInfo:
    """What a per-request value is computed from: the app's services, the request's headers,
    and the instant bound as `now` (the one clock, read once per request)."""

    services: Any
    headers: Mapping[str, str]
    now: datetime


# A rule or column over one row of the source's table (an alias of it), in a scope.
Expr = Callable[[FromClause, Scope], ColumnElement[Any]]
# A condition tying a child row to its parent row: (parent, child, scope) -> bool.
Link = Callable[[FromClause, FromClause, Scope], ColumnElement[bool]]


@dataclass(frozen=True)
class Scalar:
    """A leaf field: an expression over the row, already in the JSON form GraphQL answers."""

    expr: Expr


@dataclass(frozen=True)
class One:
    """A nullable object field: the row of `target`'s table that `link` finds, or null."""

    target: str
    link: Link


@dataclass(frozen=True)
class Many:
    """A Relay connection of `target` rows, newest first by (`order` columns), paged by
    `first`/`after` with keyset cursors.

    `link` selects the rows an index on (its columns, `order`) walks: the parent's rows (the
    parent is None at the root), or a partial index's predicate. `rule`, if any, is checked
    on each row walked (a correlated condition on the row): who the viewer may see."""

    target: str
    link: Callable[[FromClause | None, FromClause, Scope], ColumnElement[bool]]
    order: tuple[str, str]  # (timestamp or name column, id column), as an index has them
    rule: Callable[[FromClause, Scope], ColumnElement[bool]] | None = None
    # Arguments narrowing the rows (whispersReceived's unreadOnly, institutions' search).
    filters: dict[str, Filter] = field(default_factory=dict)
    ascending: bool = False  # oldest (or A to Z) first instead
    text_key: bool = False  # the first order column is text (a name), not a timestamp
    # False: a plain ORDER BY ... LIMIT. For a small reference table (no index to walk), or
    # rows with no rule whose `link` and `order` are one index's columns (a user's projects:
    # (user_id, created_at, id)), which any planner reads with one ordered index scan.
    walk: bool = True
    # The resolver's rate limit, counted by the statement (the feed's `feed:user`).
    rate_limit: str | None = None


@dataclass(frozen=True)
class Filter:
    """An argument narrowing a connection: `prepare` turns its value into the bound parameter
    (None: no narrowing; raise ValueError where the interpreter answers an error), and
    `where` is the condition over a row with that parameter."""

    prepare: Callable[[Any], Any]
    where: Callable[[FromClause, Any], ColumnElement[bool]]
    type_: Any


def only_if_true(value: Any) -> bool | None:
    """Filter.prepare of a boolean argument that narrows when true (null means false, as the
    resolvers read it)."""
    if value is not None and not isinstance(value, bool):
        raise ValueError(value)
    return True if value else None


@dataclass(frozen=True)
class Lookup:
    """A root field answering the one row of `target` whose `key` column equals the argument
    `arg` (an id; None: the viewer's own id), if `rule` lets the viewer see it; else null."""

    target: str
    arg: str | None
    key: str
    rule: Callable[[Table, Scope], ColumnElement[bool]]
    rows: Callable[[], FromClause]


@dataclass(frozen=True)
class Inline:
    """A non-null object field with no row of its own: `target`'s fields read the parent's row
    (a value computed from it, such as the viewer's membership)."""

    target: str


@dataclass(frozen=True)
class Rows:
    """A non-null list of `target` objects (not a connection: no paging): the rows `rows`
    selects for the parent row, in the order of its `order` columns."""

    target: str
    rows: Callable[[FromClause, Scope], Select[Any]]
    order: tuple[str, ...]


@dataclass(frozen=True)
class Given:
    """A root field whose rows were found before the statement, outside PostgreSQL (phase 1: a
    vector search in Python), and come in as bound parameters: `columns` one array each, an
    element per row, read in their order (unnest ... WITH ORDINALITY, column `ord`); `values`
    one parameter each, for the answer as a whole (read as a one-row table). The answer is an
    object of `target`; `types` are the object types over those two tables (a connection, its
    edges, its pageInfo): their fields are Scalars over the row they sit on, One of a catalog
    type, Same or Each. The statement reads nothing of the request's arguments: phase 1 did."""

    target: str
    values: dict[str, Any]  # name -> SQL type
    columns: dict[str, Any]  # name -> SQL type of one element
    types: dict[str, dict[str, FieldSource]]


@dataclass(frozen=True)
class Same:
    """An object field of a `Given` type over the row its parent sits on (a connection's
    pageInfo, an edge's node)."""

    target: str


@dataclass(frozen=True)
class Each:
    """A list field of a `Given` type: an object of `target` per given row, in their order."""

    target: str


FieldSource = Scalar | One | Many | Lookup | Inline | Rows | Given | Same | Each


@dataclass(frozen=True)
class Source:
    """Where one GraphQL object type's data lives: its table and how each field reads it."""

    table: Table
    fields: dict[str, FieldSource]
    # The rows as the fields read them, when more than the table (a column the fields share,
    # computed once per row): a SELECT over `table`. Only for rows reached through One.
    rows: Callable[[Scope], Select[Any]] | None = None


@dataclass(frozen=True)
class Catalog:
    """Every compiled type, by GraphQL type name, and the compiled root fields of Query."""

    types: dict[str, Source]
    roots: dict[str, FieldSource]


# The JSON forms of plain columns, as the Strawberry types write them.
def column(name: str) -> Scalar:
    return Scalar(lambda row, _: row.c[name])


def id_column(name: str = "id") -> Scalar:
    """A uuid as GraphQL's ID: its canonical text."""
    return Scalar(lambda row, _: cast(row.c[name], Text))


def list_column(name: str) -> Scalar:
    return Scalar(lambda row, _: func.to_json(row.c[name]))


def date_column(name: str) -> Scalar:
    """A date as YYYY-MM-DD (date.isoformat)."""
    return Scalar(lambda row, _: func.to_char(row.c[name], literal_column("'YYYY-MM-DD'")))


def iso_datetime(name: str) -> Scalar:
    """A timestamptz column as Strawberry writes a UTC datetime (datetime.isoformat)."""
    return Scalar(lambda row, _: iso_text(row.c[name]))


def iso_text(moment: ColumnElement[Any]) -> ColumnElement[Any]:
    """datetime.isoformat of a UTC timestamptz: microseconds only when there are some, and
    +00:00; null stays null."""
    utc = func.timezone(literal_column("'UTC'"), moment)
    seconds = func.to_char(utc, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'"))
    micros = cast(func.date_part(literal_column("'microseconds'"), utc), Integer) % 1000000
    fraction = case((micros != 0, func.to_char(utc, literal_column("'.US'"))), else_="")
    return seconds.op("||")(fraction).op("||")(literal_column("'+00:00'"))
