"""Deny by default: every root field carries one of these, or is listed in PUBLIC_FIELDS."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

# Root fields anyone may call; a test fails if any other root field lacks a permission.
PUBLIC_FIELDS = frozenset(
    {
        "Query.health",
        "Query.me",
        "Query.institutions",
        "Query.appConfig",
        "Mutation.wechatLogin",
        "Mutation.sendSmsCode",
        "Mutation.smsLogin",
        "Mutation.refreshToken",
        "Mutation.logout",
    }
)


class IsAuthenticated(BasePermission):
    """A logged-in, active user whose login has not been revoked."""

    message = "Not logged in, or the access token is invalid or expired."

    def __init__(self) -> None:
        # Strawberry declares error_extensions per instance (and it is a dict, so not shared).
        self.error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return await info.context.viewer() is not None


class IsModerator(BasePermission):
    """Use after IsAuthenticated, so that logged-out callers get UNAUTHENTICATED first."""

    message = "Only moderators may do this."
    roles: ClassVar[frozenset[str]] = frozenset({"moderator", "admin"})

    def __init__(self) -> None:
        self.error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        user = await info.context.viewer()
        return user is not None and user.role in self.roles


# Typed as the base class: strawberry's permission_classes is a list of it, and lists are
# invariant.
AUTHENTICATED: list[type[BasePermission]] = [IsAuthenticated]
MODERATOR: list[type[BasePermission]] = [IsAuthenticated, IsModerator]
