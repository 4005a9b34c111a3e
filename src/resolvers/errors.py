"""Domain exceptions. The schema layer maps them to the API's error conventions in one place.

- `UserFacingError` subclasses are expected failures: they become `UserError`s in a mutation
  payload (`errors: [UserError!]!`), with a stable `code`.
- `PublicError` subclasses are top-level GraphQL errors whose message and code are safe to show
  (not logged in, not allowed, malformed arguments).
- Anything else is unexpected: masked as INTERNAL_SERVER_ERROR, logged with its stack trace.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An expected failure of a mutation, reported in its payload."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(UserFacingError):
    code = "INVALID_INPUT"


class NotFound(UserFacingError):
    code = "NOT_FOUND"


class PublicError(Exception):
    """A top-level error whose message is safe to return as is."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class Unauthenticated(PublicError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "You must be logged in."):
        super().__init__(message)


class BadArgument(PublicError):
    code = "BAD_USER_INPUT"


class RateLimited(UserFacingError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int):
        super().__init__(f"Too many requests; try again in {retry_after} s.")
        self.retry_after = retry_after
