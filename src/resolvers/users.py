"""Reading accounts."""

from __future__ import annotations

import uuid

from src.models import User
from src.resolvers.loaders import Loaders


async def get_viewer(loaders: Loaders, viewer_id: uuid.UUID | None) -> User | None:
    """The logged-in user's account, or None when logged out or no longer active."""
    if viewer_id is None:
        return None
    user = await loaders.user_by_id.load(viewer_id)
    if user is None or user.status != "active":
        return None
    return user
