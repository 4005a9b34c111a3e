"""Per-request DataLoaders, named `<things>_by_<key>`. Built fresh for every operation, so no
state outlives a request; each relationship field is one batched query per nesting level."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property

from aiodataloader import DataLoader
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Institution, Membership, UserProfile, UserProject, Whisper
from src.models.rules import institution_shown, pro_period
from src.resolvers.pagination import Page
from src.resolvers.profiles import visible_ids
from src.resolvers.projects import project_pages
from src.resolvers.whispers import WhisperView, whisper_views

ProjectPageKey = tuple[uuid.UUID, int, str | None]  # (owner, first, after)
VisibleKey = tuple[uuid.UUID, uuid.UUID]  # (viewer, person)
ViewKey = tuple[uuid.UUID, uuid.UUID]  # (viewer, whisper)
ShownKey = tuple[uuid.UUID | None, uuid.UUID]  # (viewer, institution)


class Loaders:
    """Every loader of one request, sharing that request's session."""

    def __init__(self, session: Callable[[], AsyncSession], clock: Callable[[], datetime]):
        self._session = session
        self._clock = clock  # services.clock: PRO is decided against the one injected clock

    # Built on first use: a subscription gets fresh loaders for every event and each open
    # socket keeps its last set, so unused loaders would be ~30 objects per socket for the
    # cyclic garbage collector to walk.
    @cached_property
    def profile_by_user_id(self) -> DataLoader[uuid.UUID, UserProfile | None]:
        return DataLoader(self._profiles)

    @cached_property
    def shown_institution_by_viewer_and_id(self) -> DataLoader[ShownKey, Institution | None]:
        return DataLoader(self._institutions)

    @cached_property
    def project_page_by_owner(self) -> DataLoader[ProjectPageKey, Page[UserProject]]:
        return DataLoader(self._project_pages)

    @cached_property
    def is_pro_by_user_id(self) -> DataLoader[uuid.UUID, bool]:
        return DataLoader(self._is_pro)

    @cached_property
    def whisper_by_id(self) -> DataLoader[uuid.UUID, Whisper | None]:
        return DataLoader(self._whispers)

    @cached_property
    def visible_by_viewer_and_user(self) -> DataLoader[VisibleKey, bool]:
        return DataLoader(self._visible)

    @cached_property
    def whisper_view_by_viewer_and_id(self) -> DataLoader[ViewKey, WhisperView]:
        return DataLoader(self._whisper_views)

    async def _whisper_views(self, keys: Sequence[ViewKey]) -> list[WhisperView]:
        by_viewer: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for viewer, whisper in keys:
            by_viewer[viewer].append(whisper)
        views = {
            (viewer, whisper): view
            for viewer, ids in by_viewer.items()
            for whisper, view in (await whisper_views(self._session(), viewer, ids)).items()
        }
        return [views[key] for key in keys]

    async def _visible(self, keys: Sequence[VisibleKey]) -> list[bool]:
        by_viewer: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for viewer, person in keys:
            by_viewer[viewer].append(person)
        seen = {
            (viewer, person)
            for viewer, people in by_viewer.items()
            for person in await visible_ids(self._session(), viewer, people)
        }
        return [key in seen for key in keys]

    async def _profiles(self, ids: Sequence[uuid.UUID]) -> list[UserProfile | None]:
        rows = await self._session().exec(
            select(UserProfile).where(col(UserProfile.user_id).in_(ids))
        )
        found = {p.user_id: p for p in rows}
        return [found.get(i) for i in ids]

    async def _institutions(self, keys: Sequence[ShownKey]) -> list[Institution | None]:
        # The rule book decides what the viewer may see of an institution (a proposal shows
        # to its proposer only); a hidden one loads as missing.
        by_viewer: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
        for viewer, institution in keys:
            by_viewer[viewer].append(institution)
        found: dict[ShownKey, Institution] = {}
        for viewer, ids in by_viewer.items():
            rows = await self._session().exec(
                select(Institution).where(col(Institution.id).in_(ids), institution_shown(viewer))
            )
            found.update(((viewer, row.id), row) for row in rows)
        return [found.get(key) for key in keys]

    async def _project_pages(self, keys: Sequence[ProjectPageKey]) -> list[Page[UserProject]]:
        # One query per distinct (first, after): in practice one for a whole page of users.
        by_args: dict[tuple[int, str | None], list[uuid.UUID]] = defaultdict(list)
        for owner, first, after in keys:
            by_args[(first, after)].append(owner)
        pages: dict[ProjectPageKey, Page[UserProject]] = {}
        for (first, after), owners in by_args.items():
            found = await project_pages(self._session(), owners, first, after)
            for owner in owners:
                pages[(owner, first, after)] = found[owner]
        return [pages[key] for key in keys]

    async def _whispers(self, ids: Sequence[uuid.UUID]) -> list[Whisper | None]:
        rows = await self._session().exec(select(Whisper).where(col(Whisper.id).in_(ids)))
        found = {w.id: w for w in rows}
        return [found.get(i) for i in ids]

    async def _is_pro(self, ids: Sequence[uuid.UUID]) -> list[bool]:
        rows = await self._session().exec(
            select(col(Membership.user_id)).where(
                col(Membership.user_id).in_(ids), pro_period(self._clock())
            )
        )
        pro = set(rows)
        return [i in pro for i in ids]
