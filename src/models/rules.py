"""The rule book: every business rule about who may see, reach or be counted, stated once.

Each rule is a function returning a SQLAlchemy Core boolean expression. Its inputs are SQL
expressions, so a caller passes a Python value, a typed `bindparam` (the compiled statements)
or a column of an outer query (a rule applied to every row). Rules over a row of a table take
that table as a keyword (default: the table itself; pass an alias such as
`USERS.alias("u")` when the statement has its own). Time enters only as the argument `now`,
the caller's one clock (`services.clock()`, bound as a parameter): no rule reads SQL `now()`
or `utcnow()`, so an ORM resolver, a compiled statement and an MCP tool answer the same for
the same instant. The ORM resolvers, the compiled statements (send_sql, live_sql, the read
compiler) and the MCP tools all call these; none restates one.

Anonymity, in one paragraph (issue 15). The adversary is the recipient R of an anonymous,
unrevealed whisper W, with any number of accounts: nothing R can observe may depend on who
sent W. So blocks act at *send* time (`may_whisper`): an already received anonymous whisper
never depends on R's blocks, nor on its hidden sender's state (`shown_to_recipient`); and a
reply to an anonymous, unrevealed whisper is accepted whenever the replier may send at all,
stored *withheld* when its hidden recipient may not receive it (`may_whisper` again), so the
replier's answers, rows and quota are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    Table,
    Text,
    Uuid,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.types import NullType, TypeEngine
from sqlmodel import SQLModel

import src.models  # noqa: F401 - registers every table in the metadata read below

_tables = SQLModel.metadata.tables
USERS: Table = _tables["users"]
PROFILES: Table = _tables["user_profiles"]
AUTH_SESSIONS: Table = _tables["auth_sessions"]
USER_BLOCKS: Table = _tables["user_blocks"]
WHISPER_SENDER_BLOCKS: Table = _tables["whisper_sender_blocks"]
WHISPERS: Table = _tables["whispers"]
MEMBERSHIPS: Table = _tables["memberships"]
USER_REPORTS: Table = _tables["user_reports"]
RATE_LIMIT_COUNTERS: Table = _tables["rate_limit_counters"]
INSTITUTIONS: Table = _tables["institutions"]
USER_QUOTAS: Table = _tables["user_quotas"]


# --- accounts and logins -------------------------------------------------------------------


def active(*, user: FromClause = USERS) -> ColumnElement[bool]:
    """Over User: not banned, not deleted. Everything that shows or reaches people needs it."""
    return user.c.status == "active"


def registered(*, user: FromClause = USERS) -> ColumnElement[bool]:
    """Over User: completed `register` (consent and the basic profile)."""
    return user.c.registered_at.is_not(None)


def login_valid(viewer: Any, session: Any, *, user: FromClause = USERS) -> ColumnElement[bool]:
    """Over User: this row is `viewer`, still active, and `session` is one of its logins that
    has not been revoked — checked on every request and every subscription event, so a ban,
    logout or deletion takes effect at the next one. (Registration is a separate rule: an
    unregistered account may log in and register.)"""
    login = AUTH_SESSIONS.alias()
    return and_(
        user.c.id == viewer,
        active(user=user),
        exists()
        .where(login.c.id == session, login.c.user_id == user.c.id, login.c.revoked_at.is_(None))
        .correlate(user),
    )


# --- people ----------------------------------------------------------------------------------


def blocked_between(a: Any, b: Any) -> ColumnElement[bool]:
    """A block exists between `a` and `b`, in either direction (a block hides both ways)."""
    block = USER_BLOCKS.alias()
    return exists().where(
        or_(
            and_(block.c.blocker_id == a, block.c.blocked_id == b),
            and_(block.c.blocker_id == b, block.c.blocked_id == a),
        )
    )


def listed(*, user: FromClause = USERS, profile: FromClause = PROFILES) -> ColumnElement[bool]:
    """Over User joined with UserProfile: the person's own choice to be discoverable, and no
    moderation hold (many reports hide someone until a moderator decides, leaving their
    choice alone)."""
    return and_(profile.c.visibility == "discoverable", user.c.moderation_hold_at.is_(None))


def in_discovery(
    *, user: FromClause = USERS, profile: FromClause = PROFILES
) -> ColumnElement[bool]:
    """Over User joined with UserProfile: has a point in the vector index — what anyone at all
    may find (`visible_to` minus the viewer-specific parts: blocks and oneself)."""
    return and_(active(user=user), registered(user=user), listed(user=user, profile=profile))


def visible_to(
    viewer: Any, *, user: FromClause = USERS, profile: FromClause = PROFILES
) -> ColumnElement[bool]:
    """Over User joined with UserProfile: the viewer may see this person — registered, active,
    discoverable, not held back by moderation, not blocked either way. Everyone sees
    themselves. Every path that leads to a person (feed, `user(id)`, whisper senders and
    recipients, matches, reports, discovery, MCP) uses this, so a hidden, held, blocked,
    banned or unregistered person looks the same as a missing one."""
    return and_(
        active(user=user),
        registered(user=user),
        or_(
            user.c.id == viewer,
            and_(listed(user=user, profile=profile), ~blocked_between(viewer, user.c.id)),
        ),
    )


# --- plans -----------------------------------------------------------------------------------


def pro_period(now: Any, *, membership: FromClause = MEMBERSHIPS) -> ColumnElement[bool]:
    """Over Membership: a PRO period covering `now`. Expiry needs no job: it is a comparison."""
    return and_(
        membership.c.plan == "PRO",
        membership.c.valid_from <= now,
        membership.c.valid_until > now,
    )


def is_pro(user_id: Any, now: Any) -> ColumnElement[bool]:
    """`user_id` is PRO at `now` (a PRO period covers it; periods bought ahead do not)."""
    period = MEMBERSHIPS.alias()
    found = exists().where(period.c.user_id == user_id, pro_period(now, membership=period))
    # Correlated to the user's row wherever it is, also from inside a derived table (where
    # SQLAlchemy's automatic correlation would add the row to this FROM instead).
    return found.correlate_except(period)


def plan_in_force(user_id: Any, now: Any) -> ColumnElement[str]:
    """The plan `user_id` has at `now`: 'PRO' while a PRO period covers it, else 'BASIC'."""
    return case((is_pro(user_id, now), literal("PRO")), else_=literal("BASIC"))


def pro_latest_end(user_id: Any, now: Any) -> ColumnElement[datetime]:
    """When `user_id`'s PRO time ends: the latest end of a PRO period ending after `now` —
    periods bought ahead stack after the current one (null: none)."""
    period = MEMBERSHIPS.alias()
    return (
        select(func.max(period.c.valid_until))
        .where(period.c.user_id == user_id, period.c.plan == "PRO", period.c.valid_until > now)
        .correlate_except(period)
        .scalar_subquery()
    )


def pro_valid_until(user_id: Any, now: Any) -> ColumnElement[datetime]:
    """A membership's validUntil: the end of PRO time while PRO is in force, else null (a
    period bought ahead alone does not make BASIC end)."""
    return case((is_pro(user_id, now), pro_latest_end(user_id, now)))


# --- whispers and anonymity ------------------------------------------------------------------


def sender_hidden(*, whisper: FromClause = WHISPERS) -> ColumnElement[bool]:
    """Over Whisper: its recipient cannot know who sent it (anonymous, not revealed)."""
    return and_(whisper.c.is_anonymous, whisper.c.revealed_at.is_(None))


def shown_to_recipient(viewer: Any, *, whisper: FromClause = WHISPERS) -> ColumnElement[bool]:
    """Over Whisper: it is in the viewer's inbox. Addressed to them, not withheld, and — only
    where they know who sent it — not from someone blocked either way. Whether the hidden
    sender of an anonymous, unrevealed whisper is blocked, banned, hidden or deleted never
    matters: that would tell the viewer who it is."""
    return and_(
        whisper.c.recipient_id == viewer,
        whisper.c.withheld.is_(false()),
        or_(
            sender_hidden(whisper=whisper),
            whisper.c.sender_id.is_(None),
            ~blocked_between(viewer, whisper.c.sender_id),
        ),
    )


def whisper_sender_blocked(recipient: Any, sender: Any) -> ColumnElement[bool]:
    """`recipient` used blockWhisperSender on a whisper `sender` sent them."""
    block = WHISPER_SENDER_BLOCKS.alias()
    return exists().where(block.c.blocker_id == recipient, block.c.sender_id == sender)


def may_whisper(sender: Any, *, user: FromClause = USERS) -> ColumnElement[bool]:
    """Over User (the recipient): `sender` may whisper this person now — someone else, active,
    registered, no block either way, and no blockWhisperSender of theirs on one of the
    sender's whispers. Blocks act here, at send time, and nowhere in the recipient's inbox."""
    return and_(
        user.c.id != sender,
        active(user=user),
        registered(user=user),
        ~blocked_between(sender, user.c.id),
        ~whisper_sender_blocked(user.c.id, sender),
    )


def sender_shown(viewer: Any, *, whisper: FromClause = WHISPERS) -> ColumnElement[bool]:
    """Over Whisper: the viewer may know who sent it — they wrote it, or it is not anonymous
    and unrevealed. (The id shown may still be NULL: a deleted sender.)"""
    return or_(whisper.c.sender_id == viewer, ~sender_hidden(whisper=whisper))


def recipient_shown(
    viewer: Any, *, whisper: FromClause = WHISPERS, original: FromClause
) -> ColumnElement[bool]:
    """Over Whisper LEFT JOIN `original` (the whisper it replies to): the viewer may know whom
    it went to — they received it, or it replies to nothing, or they know who sent what it
    replies to. The writer of a reply to an anonymous, unrevealed whisper never learns whom
    the reply reached: replying never reveals who it goes to."""
    return or_(
        whisper.c.recipient_id == viewer,
        original.c.id.is_(None),
        and_(sender_shown(viewer, whisper=original), original.c.sender_id.is_not(None)),
    )


def read_at_shown(
    viewer: Any, *, whisper: FromClause = WHISPERS, original: FromClause
) -> ColumnElement[bool]:
    """Over Whisper LEFT JOIN `original`: the viewer may know when it was read — they are its
    recipient, or may know its recipient. Never for the writer of a reply to an anonymous,
    unrevealed whisper: that the reply was read would tell it was delivered, which depends on
    who its hidden recipient is."""
    return or_(
        whisper.c.recipient_id == viewer,
        and_(
            recipient_shown(viewer, whisper=whisper, original=original),
            whisper.c.recipient_id.is_not(None),
        ),
    )


# --- institutions ----------------------------------------------------------------------------


def institution_shown(
    viewer: Any, *, institution: FromClause = INSTITUTIONS
) -> ColumnElement[bool]:
    """Over Institution: listed (verified by a moderator), or a proposal of the viewer's own —
    an unapproved proposal shows to its proposer only, on their profile, in their searches and
    when they pick it; to everyone else it looks missing. Without a viewer, listed only."""
    listed = institution.c.verified.is_(True)
    return listed if viewer is None else or_(listed, institution.c.proposed_by_id == viewer)


# --- reports ---------------------------------------------------------------------------------


def counts_toward_hold(
    now: Any,
    min_age_h: float,
    *,
    report: FromClause = USER_REPORTS,
    reporter: FromClause = USERS,
) -> ColumnElement[bool]:
    """Over UserReport joined with its reporter (User): a report that counts toward the
    automatic hold — about a user (a whisper report never counts: its reporter could watch
    who disappears), by someone registered, active and registered at least `min_age_h` ago
    (fresh accounts cannot buy a hold)."""
    return and_(
        report.c.kind == "user",
        active(user=reporter),
        registered(user=reporter),
        reporter.c.registered_at + timedelta(hours=min_age_h) <= now,
    )


# --- pages -----------------------------------------------------------------------------------


def after(keys: Sequence[Any], cursor: Sequence[Any], *, descending: bool) -> ColumnElement[bool]:
    """Keyset paging: the rows strictly after `cursor` in the order of `keys` (all ascending or
    all descending; the last key is unique, so no row is skipped or repeated)."""
    if len(keys) != len(cursor):
        raise ValueError("a cursor has one value per key")
    rows, mark = tuple_(*keys), tuple_(*cursor)
    return rows < mark if descending else rows > mark


# --- counters --------------------------------------------------------------------------------


def _sql(value: Any, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """`value` as a SQL expression: a Python value becomes a bound literal of `type_`."""
    if not isinstance(value, ColumnElement):
        return literal(value, type_)
    # An untyped bindparam: asyncpg must be told its type (INSERT ... SELECT infers none).
    return type_coerce(value, type_) if isinstance(value.type, NullType) else value


def rate_limit_hit(
    key: Any, window_start: Any, expires_at: Any, *, when: FromClause | None = None
) -> ReturningInsert[Any]:
    """One hit on a fixed-window rate-limit counter, RETURNING the window's hits after it.
    `when`: FROM items that must all yield a row for the hit to count (the compiled send
    counts a hit only when its viewer and recipient exist); None: always."""
    counters = RATE_LIMIT_COUNTERS
    row = select(
        _sql(key, Text()),
        _sql(window_start, DateTime(timezone=True)),
        literal(1, Integer()),
        _sql(expires_at, DateTime(timezone=True)),
    )
    if when is not None:
        row = row.select_from(when)
    hit = insert(counters).from_select(
        ["key", "window_start", "hits", "expires_at"], row, include_defaults=False
    )
    return hit.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"hits": counters.c.hits + 1}
    ).returning(counters.c.hits)


def quota_use(
    user_id: Any,
    day: Any,
    kind: Any,
    amount: Any,
    limit: Any,
    *,
    when: FromClause | None = None,
    only_if: ColumnElement[bool] | None = None,
) -> ReturningInsert[Any]:
    """Use `amount` of a user's daily `kind` quota if it stays within `limit` (the plan's,
    recorded with the row), RETURNING the day's use after it; no row when it would not fit.
    One conditional upsert: PostgreSQL serializes concurrent ones on the row, so 50 calls with
    10 left make exactly 10 succeed. `when`/`only_if`: FROM items and a condition the use
    depends on (the compiled send: its rate-limit hit and plan)."""
    quotas = USER_QUOTAS
    amount, limit = _sql(amount, Integer()), _sql(limit, Integer())
    row = select(_sql(user_id, Uuid()), _sql(day, Date()), _sql(kind, Text()), amount, limit).where(
        amount <= limit
    )
    if when is not None:
        row = row.select_from(when)
    if only_if is not None:
        row = row.where(only_if)
    use = insert(quotas).from_select(
        ["user_id", "day", "kind", "used", "daily_limit"], row, include_defaults=False
    )
    return use.on_conflict_do_update(
        index_elements=["user_id", "day", "kind"],
        set_={"used": quotas.c.used + amount, "daily_limit": use.excluded.daily_limit},
        where=quotas.c.used + amount <= use.excluded.daily_limit,
    ).returning(quotas.c.used)
