"""The whole compiled read: who is asking (a live session of an active user), the resolver's
rate-limit hit when its counters live in PostgreSQL, and the answer — one statement, compiled
once per query shape by SQLAlchemy for asyncpg, bound per request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    String,
    Text,
    Uuid,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.visitors import cloned_traverse
from sqlalchemy.types import DateTime

from src.models import rules
from src.resolvers.errors import BadArgument
from src.resolvers.pagination import DEFAULT_PAGE, MAX_PAGE, MIN_PAGE, decode_cursor
from src.resolvers.readplan.compiler import Compiler, concat, raw_literal
from src.resolvers.readplan.model import Catalog, NotCompilable, RequestInfo, Sel

_DIALECT = asyncpg_dialect()
# Where a page starts without `after`: past every row, so the keyset condition stays one
# index condition (asyncpg writes datetime.max as PostgreSQL's infinity).
_TOP = (datetime.max.replace(tzinfo=UTC), uuid.UUID(int=(1 << 128) - 1))


class Refused(Exception):
    """A request value the interpreter answers with an error (bad page size, bad cursor)."""


@dataclass(frozen=True)
class ReadPlan:
    """One statement returning (ok: the viewer's session is live, body: the response JSON
    text[, hits: the rate-limit counter after this request])."""

    sql: str  # asyncpg's $n placeholders
    order: tuple[str, ...]  # parameter names by position
    args: dict[str, tuple[str, Any]]  # parameter -> (kind, source) from the request
    rate_limit: str | None  # the resolver's limit this statement counts
    # A `Given` root: its phase 1 runs first, in the statement's transaction, and binds
    # the rows (`bind_given`).
    given: Sel | None = None


def compile_read(catalog: Catalog, roots: tuple[Sel, ...], *, count_hit: bool) -> ReadPlan:
    """The plan for a query's root selections, or NotCompilable."""
    compiler = Compiler(catalog)
    data = compiler.data(roots)
    if len(compiler.rate_limits) > 1:
        raise NotCompilable("several rate-limited fields")  # each is counted by the resolver
    limit = compiler.rate_limits[0] if compiler.rate_limits else None
    # The interpreter's require_viewer: a live login of an active user (the rule book's).
    viewer = (
        select(rules.USERS.c.id)
        .where(
            rules.login_valid(
                bindparam("viewer_id", type_=Uuid), bindparam("session_id", type_=Uuid)
            )
        )
        .cte("viewer")
    )
    body = concat(concat(raw_literal('{"data":'), data), raw_literal("}"))
    columns: list[Any] = [exists(select(viewer.c.id)).label("ok"), cast(body, Text).label("body")]
    if limit and count_hit:
        # The rule book's counter upsert, inside the statement: one round trip per feed page.
        # Its commit does not wait for the WAL flush: a hit lost in a crash is harmless, while
        # waiting held the counter row's lock through the flush, so one user's pages queued
        # behind each other (the benchmark's 16 connections share one user: 730 -> 1,300
        # statements/s). Local to this statement's transaction; sends still commit durably.
        unflushed = select(
            func.set_config(
                literal_column("'synchronous_commit'"), literal_column("'off'"), true()
            ).label("unflushed")
        ).subquery("unflushed")
        hit = rules.rate_limit_hit(
            bindparam("hit_key", type_=String),
            bindparam("hit_start", type_=DateTime(timezone=True)),
            bindparam("hit_expires", type_=DateTime(timezone=True)),
            when=viewer.join(unflushed, true()),
        ).cte("hit")
        columns.append(select(hit.c.hits).scalar_subquery().label("hits"))
    request_bound = _CONTEXT | set(compiler.args)

    def inline(bind: BindParameter[Any]) -> None:
        # The rules' constants ('active', 'PRO', ...) written into the SQL, not bound: a
        # generic plan can then still match the partial indexes they describe.
        if bind.key not in request_bound:
            bind.literal_execute = True
        else:
            bind.required = False  # bound per request, not here

    statement = cloned_traverse(select(*columns), {}, {"bindparam": inline})
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    order = tuple(compiled.positiontup or ())
    return ReadPlan(compiled.string, order, compiler.args, limit, compiler.given_root)


# Parameters bound from the request's context rather than its variables.
_CONTEXT = {"viewer_id", "session_id", "now", "today", "hit_key", "hit_start", "hit_expires"}


def bind_args(
    plan: ReadPlan, values: dict[str, Any], request: RequestInfo | None = None
) -> dict[str, Any]:
    """Each request-bound parameter's value from the variables (defaults applied) or, for a
    per-request value, from `request`; or Refused where the interpreter would answer an error."""
    bound: dict[str, Any] = {}
    for name, (kind, source) in plan.args.items():
        if kind == "request":
            if request is None:
                raise NotCompilable(kind)
            bound[name] = source(request)
            continue
        if kind == "given":
            continue  # phase 1's: `bind_given`
        value = None if kind == "filter" else resolve(source, values)
        if kind == "first":
            value = DEFAULT_PAGE if value is None else value
            if not page_size_ok(value):
                raise Refused(kind)
            bound[name] = value
        elif kind in ("after_at", "after_id"):
            position = _position(value)
            bound[name] = position[0] if kind == "after_at" else position[1]
        elif kind == "id":
            bound[name] = _uuid_or_none(value)
        elif kind in ("after_text", "after_text_id"):
            at, ident = _text_position(value)
            bound[name] = at if kind == "after_text" else ident
        elif kind == "filter":
            raw, prepare = source
            try:
                bound[name] = prepare(resolve(raw, values))
            except ValueError:
                raise Refused(kind) from None
        else:
            raise NotCompilable(kind)
    return bound


def bind_given(plan: ReadPlan, found: dict[str, Any]) -> dict[str, Any]:
    """The `Given` root's parameters from what phase 1 found (by value or column name)."""
    return {name: found[source] for name, (kind, source) in plan.args.items() if kind == "given"}


def resolve(source: Any, values: dict[str, Any]) -> Any:
    """An argument's value; an unset variable means the argument's default (null here)."""
    if isinstance(source, tuple) and source[:1] == ("$",):
        return values.get(source[1])
    return source


def page_size_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_PAGE <= value <= MAX_PAGE


def _position(cursor: Any) -> tuple[datetime, uuid.UUID]:
    if cursor is None:
        return _TOP
    if not isinstance(cursor, str):
        raise Refused("after")
    try:
        return decode_cursor(cursor, datetime, uuid.UUID)
    except BadArgument:
        raise Refused("after") from None


def _text_position(cursor: Any) -> tuple[str, uuid.UUID]:
    """A (name, id) cursor; without one, a position before every row (names are not empty)."""
    if cursor is None:
        return "", uuid.UUID(int=0)
    if not isinstance(cursor, str):
        raise Refused("after")
    try:
        return decode_cursor(cursor, str, uuid.UUID)
    except BadArgument:
        raise Refused("after") from None


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    """user(id) answers null for an id that is not a UUID, as for one nobody has."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def clock_params(now: datetime, today: date) -> dict[str, Any]:
    return {"now": now, "today": today}
