"""One compiler for every compiled read: a selection (`Sel` tree) over the declared types
(`Catalog`) becomes one SQL expression that builds the JSON answer, in the manner of
PostGraphile's pgSelect inlining:

- an object field is a correlated scalar subquery building the JSON text of the fields asked
  for, in the order asked (`json_object`);
- a connection is one aggregate over a derived table of its rows: keyset condition, ORDER BY
  the (timestamp, id) pair an index has, LIMIT first + 1 *inside* the derived table, so the
  plan walks that index and stops, whatever the table statistics say; edges, hasNextPage and
  endCursor come from that one pass.

Nothing here knows a table or a rule: the declarations carry both (src/schema/*).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    column,
    extract,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.types import DateTime

from src.models import rules
from src.resolvers.pagination import DEFAULT_PAGE
from src.resolvers.readplan.model import (
    Catalog,
    Each,
    Given,
    Inline,
    Lookup,
    Many,
    NotCompilable,
    One,
    Rows,
    Same,
    Scalar,
    Scope,
    Sel,
    Source,
)

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def cursor_of(
    key: ColumnElement[Any], ident: ColumnElement[Any], text_key: bool = False
) -> ColumnElement[Any]:
    """pagination.encode_cursor in SQL: base64url, unpadded, of "<key>\\x1f<uuid>", a time
    key as epoch microseconds."""
    first = key if text_key else cast(cast(extract("epoch", key) * 1000000, BigInteger), Text)
    raw = first.op("||")(func.chr(31)).op("||")(cast(ident, Text))
    b64 = func.encode(func.convert_to(raw, literal_column("'UTF8'")), literal_column("'base64'"))
    return func.translate(b64, literal_column("'+/=' || chr(10)"), literal_column("'-_'"))


def json_object(
    sels: tuple[Sel, ...], value: Callable[[Sel], ColumnElement[Any]]
) -> ColumnElement[Any]:
    """The JSON text of an object of the selected fields in the order asked: `__typename` is
    the type selected on, every other field the JSON text `value` makes of it (or
    NotCompilable). Built by concatenating text: PostgreSQL's json_build_object looks up how
    to write each argument's type on every call, which cost about twice as much per object."""
    text: ColumnElement[Any] | None = None
    for n, sel in enumerate(sels):
        answer = json_literal(sel.on) if sel.name == "__typename" else value(sel)
        text = concat(text, raw_literal(("{" if n == 0 else ",") + json_key(sel.key) + ":"))
        text = concat(text, answer)
    return concat(text, raw_literal("}")) if text is not None else raw_literal("{}")


def json_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """Any SQL value as JSON text (to_json writes it as json_build_object did), null as null."""
    return func.coalesce(cast(func.to_json(value), Text), raw_literal("null"))


def json_list(
    element: ColumnElement[Any], *order: Any, where: ColumnElement[bool] | None = None
) -> ColumnElement[Any]:
    """The aggregate JSON text of a list of `element` (JSON text) in `order`; [] for none."""
    aggregate = func.string_agg(element, aggregate_order_by(raw_literal(","), *order))
    listed: ColumnElement[Any] = aggregate if where is None else aggregate.filter(where)
    inner = func.coalesce(listed, raw_literal(""))
    return concat(concat(raw_literal("["), inner), raw_literal("]"))


def or_null(json: ColumnElement[Any]) -> ColumnElement[Any]:
    """JSON text that may be SQL NULL (an object not found): JSON null then."""
    return func.coalesce(json, raw_literal("null"))


def json_key(name: str) -> str:
    if not _NAME.match(name):
        raise NotCompilable(name)
    return f'"{name}"'


def json_literal(name: str) -> ColumnElement[Any]:
    """A GraphQL name as a JSON string constant."""
    return raw_literal(json_key(name))


def raw_literal(text: str) -> ColumnElement[Any]:
    """SQL text constant of JSON punctuation and checked names (no quote can occur)."""
    assert "'" not in text
    return literal_column(f"'{text}'::text")


def concat(left: ColumnElement[Any] | None, right: ColumnElement[Any]) -> ColumnElement[Any]:
    return right if left is None else left.op("||")(right)


class Compiler:
    """Compiles the root selections of one query; `args` records which request value each
    parameter takes (("first" | "after" | "id", source)), for binding per request."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.args: dict[str, tuple[str, Any]] = {}
        self.rate_limits: list[str] = []
        self._names = itertools.count()
        self.given_root: Sel | None = None  # the root a phase 1 answers first, if any
        self.scope = Scope(
            viewer=bindparam("viewer_id", type_=Uuid),
            now=bindparam("now", type_=DateTime(timezone=True)),
            today=bindparam("today", type_=Date),
            per_request=lambda value, type_: self._arg("request", value, type_),
        )

    def _arg(self, kind: str, source: Any, type_: Any) -> Any:
        name = f"a{next(self._names)}_{kind}"
        self.args[name] = (kind, source)
        return bindparam(name, type_=type_)

    def _alias(self) -> str:
        return f"t{next(self._names)}"

    # --- the answer ---------------------------------------------------------------------------

    def data(self, roots: tuple[Sel, ...]) -> ColumnElement[Any]:
        """The JSON text of every root field, as the `data` object."""

        def value(sel: Sel) -> ColumnElement[Any]:
            source = self.catalog.roots.get(sel.name)
            if isinstance(source, Many):
                return self.connection(sel, source, None)
            if isinstance(source, Lookup):
                return or_null(self.lookup(sel, source))
            if isinstance(source, Given) and self.given_root is None:
                # One per operation: its phase 1 (and the errors it answers) is the whole
                # operation's, the other roots built by the same statement.
                self.given_root = sel
                return self.given(sel, source)
            raise NotCompilable(sel.name)

        if any(sel.name == "__typename" for sel in roots):
            raise NotCompilable("__typename")  # the root's: not declared
        return json_object(roots, value)

    def obj(self, sels: tuple[Sel, ...], source: Source, row: FromClause) -> ColumnElement[Any]:
        def value(sel: Sel) -> ColumnElement[Any]:
            field = source.fields.get(sel.name)
            if isinstance(field, Scalar):
                if sel.args:
                    raise NotCompilable(f"{sel.name}: arguments")
                return json_text(field.expr(row, self.scope))
            if isinstance(field, One):
                return or_null(self.one(sel, field, row))
            if isinstance(field, Many):
                return self.connection(sel, field, row)
            if isinstance(field, Inline) and not sel.args:
                return self.obj(sel.children, self.catalog.types[field.target], row)
            if isinstance(field, Rows):
                return self.rows(sel, field, row)
            raise NotCompilable(sel.name)

        return json_object(sels, value)

    def rows(self, sel: Sel, field: Rows, row: FromClause) -> ColumnElement[Any]:
        """The JSON list of the objects, in order; [] when there are none."""
        if sel.args:
            raise NotCompilable(f"{sel.name}: arguments")
        items = field.rows(row, self.scope).correlate(row).subquery(self._alias())
        element = self.obj(sel.children, self.catalog.types[field.target], items)
        listed = json_list(element, *(items.c[n] for n in field.order))
        answer = select(listed).select_from(items)
        return answer.correlate(row).scalar_subquery()

    def one(self, sel: Sel, field: One, row: FromClause) -> ColumnElement[Any]:
        if sel.args:
            raise NotCompilable(f"{sel.name}: arguments")
        target = self.catalog.types[field.target]
        child = (
            target.rows(self.scope).subquery(self._alias())
            if target.rows is not None
            else target.table.alias(self._alias())
        )
        found = select(self.obj(sel.children, target, child)).where(
            field.link(row, child, self.scope)
        )
        return found.correlate(row).scalar_subquery()

    def lookup(self, sel: Sel, field: Lookup) -> ColumnElement[Any]:
        if set(sel.args) != ({field.arg} if field.arg else set()):
            raise NotCompilable(f"{sel.name}: arguments")
        target = self.catalog.types[field.target]
        if target.rows is not None:
            raise NotCompilable(f"{sel.name}: a lookup of derived rows")
        table = target.table
        wanted = self._arg("id", sel.args[field.arg], Uuid) if field.arg else self.scope.viewer
        rows = (
            select(*table.c)
            .select_from(field.rows())
            .where(table.c[field.key] == wanted, field.rule(table, self.scope))
            .subquery(self._alias())
        )
        return select(self.obj(sel.children, target, rows)).select_from(rows).scalar_subquery()

    def given(self, sel: Sel, field: Given) -> ColumnElement[Any]:
        """The answer over rows bound as parameters (see `Given`)."""
        values = select(
            *(self._arg("given", name, type_).label(name) for name, type_ in field.values.items())
        ).subquery(self._alias())
        arrays = [self._arg("given", name, ARRAY(type_)) for name, type_ in field.columns.items()]
        names = [column(name, type_) for name, type_ in field.columns.items()]
        rows = (
            func.unnest(*arrays)
            .table_valued(*names, with_ordinality="ord")
            .render_derived(with_types=False)
            .alias(self._alias())
        )

        def obj(sels: tuple[Sel, ...], target: str, row: FromClause) -> ColumnElement[Any]:
            fields = field.types[target]

            def value(child: Sel) -> ColumnElement[Any]:
                source = fields.get(child.name)
                if child.args:
                    raise NotCompilable(f"{child.name}: arguments")
                if isinstance(source, Scalar):
                    return json_text(source.expr(row, self.scope))
                if isinstance(source, One):
                    return or_null(self.one(child, source, row))
                if isinstance(source, Same):
                    return obj(child.children, source.target, row)
                if isinstance(source, Each) and row is values:
                    each = obj(child.children, source.target, rows)
                    listed = json_list(each, rows.c.ord)
                    return select(listed).select_from(rows).scalar_subquery()
                raise NotCompilable(child.name)

            return json_object(sels, value)

        answer = select(obj(sel.children, field.target, values)).select_from(values)
        return answer.scalar_subquery()

    def connection(self, sel: Sel, field: Many, parent: FromClause | None) -> ColumnElement[Any]:
        if set(sel.args) - {"first", "after", *field.filters}:
            raise NotCompilable(f"{sel.name}: arguments")
        if field.rate_limit:
            self.rate_limits.append(field.rate_limit)
        target = self.catalog.types[field.target]
        if target.rows is not None:
            raise NotCompilable(f"{sel.name}: a connection over derived rows")
        table = target.table
        first = self._arg("first", sel.args.get("first", DEFAULT_PAGE), Integer)
        after = sel.args.get("after")
        if field.text_key:
            at = self._arg("after_text", after, Text)
            last = self._arg("after_text_id", after, Uuid)
        else:
            at = self._arg("after_at", after, DateTime(timezone=True))
            last = self._arg("after_id", after, Uuid)
        filters = {
            name: self._arg("filter", (sel.args.get(name), spec.prepare), spec.type_)
            for name, spec in field.filters.items()
        }
        page = self.walk(field, table, parent, first, (at, last), filters)
        in_page = page.c.rn <= first

        def value(child: Sel) -> ColumnElement[Any]:
            if child.name == "edges":
                edge = self.edge(child.children, target, page, field)
                return json_list(edge, page.c.rn, where=in_page)
            if child.name == "pageInfo":
                return self.page_info(child.children, page, first, field)
            raise NotCompilable(child.name)

        # One row even when no field aggregates (only __typename, or everything skipped).
        answer = select(json_object(sel.children, value)).select_from(page).having(true())
        return answer.scalar_subquery()

    def walk(
        self,
        field: Many,
        table: Table,
        parent: FromClause | None,
        first: Any,
        after: Any,
        filters: dict[str, Any],
    ) -> FromClause:
        """The page's rows, numbered in `rn`, plus one to tell whether more follow.

        The rows come from a recursive walk down the (timestamp, id) index: each step is the
        next row below the previous one (ORDER BY ... LIMIT 1, which any planner answers with
        one index descent), and the rule is checked per row as the walk goes, until LIMIT
        first + 1 stops it. So the plan is the same with or without table statistics: a plain
        `WHERE rule ORDER BY ... LIMIT` lets a planner that thinks the table tiny read and sort
        all of it (issue 17, item 5)."""

        descending = not field.ascending

        def ordered(row: FromClause) -> tuple[Any, Any]:
            keys = [row.c[name] for name in field.order]
            return tuple(key.desc() if descending else key.asc() for key in keys)  # type: ignore[return-value]

        def narrowed(rows: Select[Any], row: FromClause) -> Select[Any]:
            if field.rule is not None:
                rows = rows.where(field.rule(row, self.scope))
            for name, value in filters.items():
                rows = rows.where(or_(value.is_(None), field.filters[name].where(row, value)))
            return rows

        if not field.walk:
            keys = [table.c[name] for name in field.order]
            plain = (
                select(*table.c, func.row_number().over(order_by=ordered(table)).label("rn"))
                .where(
                    field.link(parent, table, self.scope),
                    rules.after(keys, after, descending=descending),
                )
                .order_by(*ordered(table))
            )
            if parent is not None:
                plain = plain.correlate(parent)
            limited = narrowed(plain, table).limit(first + literal_column("1"))
            return limited.subquery(self._alias())

        def step(below: tuple[Any, Any], *outer: FromClause) -> Select[Any]:
            row = table.alias(self._alias())
            ts, ident = (row.c[name] for name in field.order)
            found = (
                select(*row.c)
                .where(
                    field.link(parent, row, self.scope),
                    rules.after((ts, ident), below, descending=descending),
                )
                .order_by(*ordered(row))
                .limit(literal_column("1"))
            )
            outer += (parent,) if parent is not None else ()
            return found.correlate(*outer) if outer else found

        start = step(after).cte(self._alias(), recursive=True, nesting=True)
        below = (start.c[field.order[0]], start.c[field.order[1]])
        following = step(below, start).lateral(self._alias())
        walked = start.union_all(select(*following.c).select_from(start).join(following, true()))
        rows = narrowed(select(*walked.c, func.row_number().over().label("rn")), walked)
        return rows.limit(first + literal_column("1")).subquery(self._alias())

    def edge(
        self, sels: tuple[Sel, ...], target: Source, page: FromClause, field: Many
    ) -> ColumnElement[Any]:
        def value(sel: Sel) -> ColumnElement[Any]:
            if sel.name == "cursor":
                return json_text(self.cursor(page, field))
            if sel.name == "node":
                return self.obj(sel.children, target, page)
            raise NotCompilable(sel.name)

        return json_object(sels, value)

    def cursor(self, page: FromClause, field: Many) -> ColumnElement[Any]:
        key, ident = (page.c[name] for name in field.order)
        return cursor_of(key, ident, field.text_key)

    def page_info(
        self, sels: tuple[Sel, ...], page: FromClause, first: Any, field: Many
    ) -> ColumnElement[Any]:
        def value(sel: Sel) -> ColumnElement[Any]:
            if sel.name == "hasNextPage":
                return json_text(func.count() > first)
            if sel.name == "endCursor":
                cursor = self.cursor(page, field)
                newest_last = aggregate_order_by(cursor, page.c.rn.desc())
                return json_text(func.array_agg(newest_last).filter(page.c.rn <= first)[1])
            raise NotCompilable(sel.name)

        return json_object(sels, value)
