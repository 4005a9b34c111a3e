"""Institutions: universities, companies and schools a profile can point at."""

from __future__ import annotations

from enum import Enum

import strawberry

from src.auth.permissions import AUTHENTICATED, MODERATOR
from src.models import Institution as InstitutionRow
from src.resolvers.institutions import (
    propose_institution,
    review_institution,
    search_institutions,
)
from src.resolvers.pagination import Page
from src.resolvers.readplan import Source
from src.resolvers.readplan.model import column, id_column
from src.resolvers.users import require_registered
from src.schema.common import PageInfo, UserError, run_mutation
from src.schema.context import Info


@strawberry.enum(description="What sort of place an institution is.")
class InstitutionKind(Enum):
    UNIVERSITY = "UNIVERSITY"
    COMPANY = "COMPANY"
    SCHOOL = "SCHOOL"
    ORGANIZATION = "ORGANIZATION"
    OTHER = "OTHER"


@strawberry.type(description="A university, company, school or other organization.")
class Institution:
    id: strawberry.ID = strawberry.field(description="Opaque id.")
    name: str = strawberry.field(description="Its name as usually written.")
    kind: InstitutionKind = strawberry.field(description="What sort of place it is.")
    city: str | None = strawberry.field(description="Where it is.")
    verified: bool = strawberry.field(
        description="False for a user-proposed entry not yet checked (only its proposer and "
        "moderators see those)."
    )

    @classmethod
    def of(cls, row: InstitutionRow) -> Institution:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            kind=InstitutionKind(row.kind),
            city=row.city,
            verified=row.verified,
        )


# Where an Institution's fields live, for the compiled reads (src/resolvers/readplan).
INSTITUTION_SOURCE = Source(
    table=InstitutionRow.__table__,  # type: ignore[attr-defined]  # SQLModel sets it
    fields={
        "id": id_column(),
        "name": column("name"),
        "kind": column("kind"),
        "city": column("city"),
        "verified": column("verified"),
    },
)


@strawberry.type(description="An institution and its cursor.")
class InstitutionEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: Institution = strawberry.field(description="The institution.")


@strawberry.type(description="A page of institutions.")
class InstitutionConnection:
    edges: list[InstitutionEdge] = strawberry.field(description="The institutions of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type
class InstitutionQuery:
    @strawberry.field(
        description="Search institutions by any of their names (Chinese or English): the "
        "listed ones, and your own proposals."
    )
    async def institutions(
        self,
        info: Info,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
        kind: InstitutionKind | None = None,
    ) -> InstitutionConnection:
        claims = info.context.claims
        page = await search_institutions(
            info.context.session,
            viewer_id=claims.user_id if claims else None,
            search=search,
            kind=kind.value if kind else None,
            first=first,
            after=after,
        )
        return _connection(page)

    @strawberry.field(
        description="Moderators only. Proposed institutions awaiting review, by name.",
        permission_classes=MODERATOR,
    )
    async def pending_institutions(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> InstitutionConnection:
        session = info.context.session
        page = await search_institutions(
            session, viewer_id=None, search=None, first=first, after=after, pending=True
        )
        return _connection(page)


def _connection(page: Page[InstitutionRow]) -> InstitutionConnection:
    return InstitutionConnection(
        edges=[InstitutionEdge(cursor=c, node=Institution.of(r)) for c, r in page.items],
        page_info=PageInfo.of(page),
    )


@strawberry.type(description="An institution after a change.")
class InstitutionPayload:
    institution: Institution | None = strawberry.field(default=None, description="It.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.type
class InstitutionMutation:
    @strawberry.mutation(
        description="Propose a school or employer that is missing (a few a day; the name passes "
        "the content check). Only you see it, and may pick it, until a moderator approves it.",
        permission_classes=AUTHENTICATED,
    )
    async def propose_institution(
        self, info: Info, name: str, kind: InstitutionKind, city: str | None = None
    ) -> InstitutionPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> InstitutionPayload:
            require_registered(user)
            row = await propose_institution(
                ctx.session, ctx.services, user, name=name, kind=kind.value, city=city
            )
            return InstitutionPayload(institution=Institution.of(row))

        return await run_mutation(info, body, lambda errors: InstitutionPayload(errors=errors))

    @strawberry.mutation(
        description="Moderators only. Approve a proposed institution (listed for everyone; the "
        "same name proposed by others merges into it) or reject it (removed; `institution` is "
        "then null).",
        permission_classes=MODERATOR,
    )
    async def review_institution(
        self, info: Info, institution_id: strawberry.ID, approve: bool
    ) -> InstitutionPayload:
        ctx = info.context
        moderator = await ctx.require_viewer()

        async def body() -> InstitutionPayload:
            row = await review_institution(
                ctx.session, moderator, institution_id=str(institution_id), approve=approve
            )
            return InstitutionPayload(institution=Institution.of(row) if row else None)

        return await run_mutation(info, body, lambda errors: InstitutionPayload(errors=errors))
