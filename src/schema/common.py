"""Types every domain shares: UserError, PageInfo, OkPayload, and the mutation runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from src.resolvers.errors import RateLimited, UserFacingError
from src.resolvers.pagination import Page
from src.schema.context import Info


@strawberry.type(description="An expected failure of a mutation, with a stable code.")
class UserError:
    code: str = strawberry.field(description="Stable machine-readable code, e.g. INVALID_INPUT.")
    message: str = strawberry.field(description="Human-readable explanation.")
    field: str | None = strawberry.field(
        default=None, description="The input field at fault, when there is one."
    )
    retry_after_seconds: int | None = strawberry.field(
        default=None, description="With RATE_LIMITED: seconds until trying again may succeed."
    )

    @classmethod
    def from_exception(cls, exc: UserFacingError) -> UserError:
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        return cls(code=exc.code, message=exc.message, field=exc.field, retry_after_seconds=retry)


@strawberry.type(description="Where a page of a connection ends.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more items follow.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor)


@strawberry.type(description="The result of a mutation with nothing else to return.")
class OkPayload:
    ok: bool = strawberry.field(description="True when it was done.")
    errors: list[UserError] = strawberry.field(description="Why it was not done.")


P = TypeVar("P")


async def run_mutation(
    info: Info, body: Callable[[], Awaitable[P]], failed: Callable[[list[UserError]], P]
) -> P:
    """Run a mutation's body in a savepoint. An expected failure (`UserFacingError`) undoes the
    body's writes and becomes the payload's `errors`; the operation's transaction goes on, so a
    document with several mutations stays consistent."""
    session = info.context.session
    try:
        async with session.begin_nested():
            return await body()
    except UserFacingError as exc:
        return failed([UserError.from_exception(exc)])
