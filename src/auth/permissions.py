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
    error_extensions: ClassVar[dict[str, object]] = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return await info.context.viewer() is not None


class IsModerator(BasePermission):
    """Use after IsAuthenticated, so that logged-out callers get UNAUTHENTICATED first."""

    message = "Only moderators may do this."
    error_extensions: ClassVar[dict[str, object]] = {"code": "FORBIDDEN"}
    roles: ClassVar[frozenset[str]] = frozenset({"moderator", "admin"})

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        user = await info.context.viewer()
        return user is not None and user.role in self.roles


class IsAdmin(IsModerator):
    message = "Only administrators may do this."
    roles: ClassVar[frozenset[str]] = frozenset({"admin"})


AUTHENTICATED = [IsAuthenticated]
MODERATOR = [IsAuthenticated, IsModerator]
ADMIN = [IsAuthenticated, IsAdmin]
