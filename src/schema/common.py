"""Types every domain shares: UserError, PageInfo, and the payload error mapping."""

from __future__ import annotations

import strawberry

from src.resolvers.errors import UserFacingError
from src.resolvers.pagination import Page


@strawberry.type(description="An expected failure of a mutation, with a stable code.")
class UserError:
    code: str = strawberry.field(description="Stable machine-readable code, e.g. INVALID_INPUT.")
    message: str = strawberry.field(description="Human-readable explanation.")
    field: str | None = strawberry.field(
        default=None, description="The input field at fault, when there is one."
    )

    @classmethod
    def from_exception(cls, exc: UserFacingError) -> UserError:
        return cls(code=exc.code, message=exc.message, field=exc.field)


@strawberry.type(description="Where a page of a connection ends.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more items follow.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")

    @classmethod
    def of(cls, page: Page[object]) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor)
