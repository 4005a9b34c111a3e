"""Discovery: natural-language search for people, with filters."""

from __future__ import annotations

import strawberry
from sqlalchemy import JSON, Boolean, Text, Uuid, cast

from src.auth.permissions import AUTHENTICATED
from src.resolvers import ai, discovery
from src.resolvers.readplan import Each, Given, One, Same, Scalar
from src.resolvers.readplan.model import FieldSource, column
from src.schema.common import PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.profiles import Gender
from src.schema.users import User, seen


@strawberry.input(description="Narrow a discovery search.")
class DiscoveryFilter:
    city: str | None = strawberry.field(default=None, description="Chinese or English name.")
    institution_id: strawberry.ID | None = strawberry.field(
        default=None, description="School or employer."
    )
    gender: Gender | None = strawberry.field(default=None, description="Stated gender.")
    min_age: int | None = strawberry.field(default=None, description="18 or more.")
    max_age: int | None = strawberry.field(default=None, description="At most 120.")
    exclude_swiped: bool | None = strawberry.field(
        default=True, description="Default true: hide people the viewer already swiped."
    )

    def criteria(self) -> discovery.Criteria:
        return discovery.Criteria(
            city=self.city,
            institution_id=str(self.institution_id) if self.institution_id else None,
            gender=self.gender.value if self.gender else None,
            min_age=self.min_age,
            max_age=self.max_age,
            exclude_swiped=self.exclude_swiped is not False,
        )


@strawberry.type(description="A person the search found, and how well they match.")
class DiscoveryHit:
    user: User = strawberry.field(description="The person.")
    score: float = strawberry.field(description="Higher is closer; compare within one search.")


@strawberry.type(description="A hit and its cursor.")
class DiscoveryEdge:
    cursor: str = strawberry.field(description="Opaque position in this search.")
    node: DiscoveryHit = strawberry.field(description="The hit.")


@strawberry.type(description="A page of search results.")
class DiscoveryConnection:
    edges: list[DiscoveryEdge] = strawberry.field(description="Best first.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    degraded: bool = strawberry.field(
        description="True when the vector index could not answer and PostgreSQL ranked instead."
    )

    @classmethod
    def of(cls, info: Info, results: discovery.Results) -> DiscoveryConnection:
        # Every hit was checked visible (`discovery._still_visible` / the fallback's query).
        edges = [
            DiscoveryEdge(cursor=c, node=DiscoveryHit(user=seen(info, h.user_id), score=h.score))
            for c, h in results.hits
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=results.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            degraded=results.degraded,
        )


# `discover` for the compiled reads, in two phases: `discovery.discover` finds the page in
# Python (quota, vector search, visibility re-check, cursors, degraded), then one statement
# builds the answer from those hits, bound in order (src/schema/fastpath_discover.py). Every
# hit was checked visible, so the user is the plain User source, as `seen` makes it.
DISCOVER_ROOTS: dict[str, FieldSource] = {
    "discover": Given(
        "DiscoveryConnection",
        values={"has_next": Boolean, "end_cursor": Text, "degraded": Boolean},
        # A score comes as the JSON Python writes for it (1.0, not PostgreSQL's 1).
        columns={"user_id": Uuid, "score": Text, "cursor": Text},
        types={
            "DiscoveryConnection": {
                "edges": Each("DiscoveryEdge"),
                "pageInfo": Same("PageInfo"),
                "degraded": column("degraded"),
            },
            "PageInfo": {"hasNextPage": column("has_next"), "endCursor": column("end_cursor")},
            "DiscoveryEdge": {"cursor": column("cursor"), "node": Same("DiscoveryHit")},
            "DiscoveryHit": {
                "score": Scalar(lambda row, _: cast(row.c.score, JSON)),
                "user": One("User", lambda hit, user, _: user.c.id == hit.c.user_id),
            },
        },
    )
}


@strawberry.type(description="Search results from an AI request.")
class DiscoverPayload:
    results: DiscoveryConnection | None = strawberry.field(default=None, description="Found.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.type
class DiscoveryQuery:
    @strawberry.field(
        description="Find people by a natural-language prompt (Chinese or English), e.g. "
        "'喜欢徒步的产品经理 in Shanghai'. No prompt: people like you.",
        permission_classes=AUTHENTICATED,
    )
    async def discover(
        self,
        info: Info,
        prompt: str | None = None,
        filter: DiscoveryFilter | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> DiscoveryConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        results = await discovery.discover(
            ctx.session,
            ctx.services,
            viewer,
            prompt=prompt,
            criteria=(filter or DiscoveryFilter()).criteria(),
            first=first,
            after=after,
        )
        return DiscoveryConnection.of(info, results)


@strawberry.type
class DiscoveryMutation:
    @strawberry.mutation(
        description="The discovery search as an AI request (AI_REQUEST quota, recorded in "
        "aiSessions as metadata only).",
        permission_classes=AUTHENTICATED,
    )
    async def ai_search(self, info: Info, prompt: str, first: int | None = 20) -> DiscoverPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> DiscoverPayload:
            results = await ai.ai_search(
                ctx.session, ctx.services, viewer, prompt=prompt, first=first
            )
            return DiscoverPayload(results=DiscoveryConnection.of(info, results))

        return await run_mutation(info, body, lambda errors: DiscoverPayload(errors=errors))
