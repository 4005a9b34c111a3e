"""Reading accounts."""

from __future__ import annotations

import uuid

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User
from src.models.rules import login_valid
from src.resolvers.errors import UserFacingError


async def load_viewer(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> User | None:
    """The active account behind an access token whose login has not been revoked.

    Loaded once per request, so a ban, logout or deletion takes effect at the next request.
    """
    return (await session.exec(select(User).where(login_valid(user_id, session_id)))).first()


def require_registered(user: User) -> None:
    """Raises REGISTRATION_REQUIRED for an account that has not completed `register`."""
    if user.registered_at is None:
        raise UserFacingError(
            "Complete registration first (register).", code="REGISTRATION_REQUIRED"
        )
