# ruff: noqa: S608 - SQL is assembled from fixed fragments and GraphQL names (checked by
# _NAME); every value is a bound parameter.
"""Compile a selection on the browse feed (`users`) into ONE SQL statement that builds the whole
JSON response in PostgreSQL, the way PostGraphile does.

The schema layer hands over a plain tree of selected fields (`Sel`); this module knows the
tables. Everything here must answer exactly what the resolvers answer — the same visibility
rules, ages, cursors and page sizes; a differential test runs both on the same queries.
Anything it cannot compile raises `NotCompilable`, and the interpreted path answers instead.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from src.resolvers.pagination import MAX_PAGE, MIN_PAGE


class NotCompilable(Exception):
    pass


_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


@dataclass(frozen=True)
class Sel:
    """One selected field: response key, field name, argument sources, sub-selections, and the
    object type it is selected on (what `__typename` answers)."""

    key: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)  # value, or ("$", variable name)
    children: tuple[Sel, ...] = ()
    on: str = ""


# The cursor of a row: base64url (no padding) of "<epoch microseconds>\x1f<uuid>", exactly as
# pagination.encode_cursor writes it.
def _cursor(ts: str, ident: str) -> str:
    raw = f"((extract(epoch FROM {ts}) * 1000000)::bigint::text || chr(31) || {ident}::text)"
    return f"translate(encode(convert_to({raw}, 'UTF8'), 'base64'), '+/=' || chr(10), '-_')"


SHANGHAI_TODAY = "(now() AT TIME ZONE 'Asia/Shanghai')::date"


def _after(param: str, ts: str, ident: str) -> str:
    """Keyset condition `(ts, id) < cursor`, or true without a cursor."""
    micros = f"CAST({param}_ts AS bigint)"
    at = f"(timestamptz 'epoch' + {micros} * interval '1 microsecond')"
    return f"({micros} IS NULL OR ({ts}, {ident}) < ({at}, CAST({param}_id AS uuid)))"


class _Compiler:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}  # name -> source (value or ("$", variable))
        self._names = itertools.count()

    def param(self, source: Any) -> str:
        name = f"p{next(self._names)}"
        self.params[name] = source
        return f":{name}"

    def obj(self, sels: tuple[Sel, ...], field_sql: Any) -> str:
        parts = []
        for sel in sels:
            if not _NAME.match(sel.key):
                raise NotCompilable(sel.key)
            if sel.name == "__typename":
                if not _NAME.match(sel.on):
                    raise NotCompilable("__typename")
                parts.append(f"'{sel.key}', '{sel.on}'::text")
            else:
                parts.append(f"'{sel.key}', {field_sql(sel)}")
        return f"json_build_object({', '.join(parts)})"

    # --- types -----------------------------------------------------------------------------

    def users_connection(self, sel: Sel) -> str:
        if set(sel.args) - {"first", "after"}:
            raise NotCompilable("arguments")
        first = self.param(sel.args.get("first", 20))
        after = self.param(("cursor", sel.args.get("after")))

        def field_sql(child: Sel) -> str:
            if child.name == "edges":
                edge = self.obj(child.children, self.user_edge)
                return (
                    f"(SELECT coalesce(json_agg({edge} ORDER BY pg.rn), '[]'::json)"
                    f" FROM page pg WHERE pg.rn <= CAST({first} AS int))"
                )
            if child.name == "pageInfo":
                cursor = _cursor("pq.registered_at", "pq.id")
                return self.page_info(child, "page", "pq", first, cursor)
            raise NotCompilable(child.name)

        self.page_sql = (
            "page AS (SELECT u.id, u.registered_at, row_number() OVER"
            " (ORDER BY u.registered_at DESC, u.id DESC) AS rn"
            " FROM users u JOIN user_profiles vp ON vp.user_id = u.id, viewer v"
            " WHERE u.id <> v.id AND u.status = 'active' AND u.registered_at IS NOT NULL"
            " AND vp.visibility = 'discoverable' AND u.moderation_hold_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM user_blocks b WHERE"
            " (b.blocker_id = v.id AND b.blocked_id = u.id)"
            " OR (b.blocker_id = u.id AND b.blocked_id = v.id))"
            f" AND {_after(after, 'u.registered_at', 'u.id')}"
            f" ORDER BY u.registered_at DESC, u.id DESC LIMIT CAST({first} AS int) + 1)"
        )
        return self.obj(sel.children, field_sql)

    def page_info(self, sel: Sel, source: str, alias: str, first: str, cursor: str) -> str:
        """`source` holds the page's rows plus one, ranked in `rn`; `cursor` reads `alias`."""

        def field_sql(child: Sel) -> str:
            if child.name == "hasNextPage":
                return f"(SELECT count(*) > CAST({first} AS int) FROM {source} {alias})"
            if child.name == "endCursor":
                return (
                    f"(SELECT {cursor} FROM {source} {alias}"
                    f" WHERE {alias}.rn <= CAST({first} AS int) ORDER BY {alias}.rn DESC LIMIT 1)"
                )
            raise NotCompilable(child.name)

        return self.obj(sel.children, field_sql)

    def user_edge(self, sel: Sel) -> str:
        if sel.name == "cursor":
            return _cursor("pg.registered_at", "pg.id")
        if sel.name == "node":
            return self.obj(sel.children, self.user)
        raise NotCompilable(sel.name)

    def user(self, sel: Sel) -> str:
        if sel.name == "id":
            return "pg.id::text"
        if sel.name == "isPro":
            return (
                "EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = pg.id AND m.plan = 'PRO'"
                " AND m.valid_from <= now() AND m.valid_until > now())"
            )
        if sel.name == "profile":
            profile = self.obj(sel.children, self.profile)
            return f"(SELECT {profile} FROM user_profiles pr WHERE pr.user_id = pg.id)"
        if sel.name == "projects":
            return self.projects(sel)
        raise NotCompilable(sel.name)

    def profile(self, sel: Sel) -> str:
        simple = {
            "nickname": "pr.nickname",
            "avatarUrl": "pr.avatar_url",
            "gender": "pr.gender",
            "city": "pr.city",
            "bio": "pr.bio",
            "interests": "to_json(pr.interests)",
            "lookingFor": "pr.looking_for",
            "discoverable": "(pr.visibility = 'discoverable')",
            "age": f"date_part('year', age({SHANGHAI_TODAY}, pr.birth_date))::int",
        }
        if sel.name in simple:
            return simple[sel.name]
        if sel.name == "institution":
            inst = self.obj(sel.children, self.institution)
            # A proposal not yet approved shows to its proposer only (resolvers/institutions).
            shown = "(i.verified OR i.proposed_by_id = :viewer_id)"
            return f"(SELECT {inst} FROM institutions i WHERE i.id = pr.institution_id AND {shown})"
        raise NotCompilable(sel.name)

    def institution(self, sel: Sel) -> str:
        columns = {
            "id": "i.id::text",
            "name": "i.name",
            "kind": "i.kind",
            "city": "i.city",
            "verified": "i.verified",
        }
        if sel.name not in columns:
            raise NotCompilable(sel.name)
        return columns[sel.name]

    def projects(self, sel: Sel) -> str:
        if set(sel.args) - {"first", "after"}:
            raise NotCompilable("arguments")
        first = self.param(sel.args.get("first", 20))
        after = self.param(("cursor", sel.args.get("after")))
        newest = "ORDER BY created_at DESC, id DESC"
        recent = (
            f"SELECT * FROM user_projects WHERE user_id = pg.id"
            f" AND {_after(after, 'created_at', 'id')} {newest}"
        )
        # Ranked rows plus one (to tell whether a next page exists) only when pageInfo is asked.
        ranked = (
            f"(SELECT x.*, row_number() OVER ({newest}) AS rn"
            f" FROM ({recent} LIMIT CAST({first} AS int) + 1) x)"
        )
        cursor = _cursor("pj.created_at", "pj.id")

        def field_sql(child: Sel) -> str:
            if child.name == "edges":
                edge = self.obj(child.children, lambda s: self.project_edge(s, cursor))
                return (
                    f"(SELECT coalesce(json_agg({edge} ORDER BY pj.created_at DESC, pj.id DESC),"
                    f" '[]'::json) FROM ({recent} LIMIT CAST({first} AS int)) pj)"
                )
            if child.name == "pageInfo":
                return self.page_info(child, ranked, "pp", first, _cursor("pp.created_at", "pp.id"))
            raise NotCompilable(child.name)

        return self.obj(sel.children, field_sql)

    def project_edge(self, sel: Sel, cursor: str) -> str:
        if sel.name == "cursor":
            return cursor
        if sel.name == "node":
            return self.obj(sel.children, self.project)
        raise NotCompilable(sel.name)

    def project(self, sel: Sel) -> str:
        columns = {
            "id": "pj.id::text",
            "title": "pj.title",
            "description": "pj.description",
            "role": "pj.role",
            "link": "pj.link",
            "tags": "to_json(pj.tags)",
            "startedOn": "to_char(pj.started_on, 'YYYY-MM-DD')",
            "endedOn": "to_char(pj.ended_on, 'YYYY-MM-DD')",
        }
        if sel.name not in columns:
            raise NotCompilable(sel.name)
        return columns[sel.name]


@dataclass(frozen=True)
class FeedPlan:
    """One SQL statement returning (viewer found, response JSON text[, rate-limit hits])."""

    sql: str
    params: dict[str, Any]  # name -> literal value, ("$", variable) or ("cursor", source)


# The feed's rate-limit hit (auth/ratelimit's upsert, `feed:user`) inside the statement, when
# the counters live in PostgreSQL: one round trip, as before the limit (issue 16, L2). The caller
# binds :hit_key, :hit_start and :hit_expires and compares `hits` with the limit.
_HIT = (
    "hit AS (INSERT INTO rate_limit_counters (key, window_start, hits, expires_at)"
    " SELECT :hit_key, :hit_start, 1, :hit_expires FROM viewer"
    " ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1"
    " RETURNING hits), "
)


def compile_feed(roots: tuple[Sel, ...], *, count_hit: bool = False) -> FeedPlan:
    """Compile a query whose only root field is `users`. Raises NotCompilable otherwise."""
    if len(roots) != 1 or roots[0].name != "users":
        raise NotCompilable("root")
    compiler = _Compiler()
    body = compiler.users_connection(roots[0])
    response = f"json_build_object('data', json_build_object('{roots[0].key}', {body}))"
    sql = (
        "WITH viewer AS (SELECT u.id FROM users u JOIN auth_sessions s ON s.user_id = u.id"
        " WHERE u.id = :viewer_id AND s.id = :session_id AND s.revoked_at IS NULL"
        f" AND u.status = 'active'), {_HIT if count_hit else ''}{compiler.page_sql}"
        f" SELECT EXISTS (SELECT 1 FROM viewer) AS ok, {response}::text AS body"
        f"{', (SELECT hits FROM hit) AS hits' if count_hit else ''}"
    )
    return FeedPlan(sql=sql, params=compiler.params)


def page_size_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_PAGE <= value <= MAX_PAGE
