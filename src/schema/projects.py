"""Portfolio projects: types, inputs and the owner's mutations."""

from __future__ import annotations

import uuid

import strawberry

from src.auth.permissions import AUTHENTICATED
from src.models import UserProject
from src.resolvers import projects
from src.resolvers.pagination import check_first
from src.resolvers.readplan import Source
from src.resolvers.readplan.model import column, date_column, id_column, list_column
from src.resolvers.users import require_registered
from src.schema.common import OkPayload, PageInfo, UserError, run_mutation
from src.schema.context import Info


@strawberry.type(description="A project in a user's portfolio.")
class Project:
    id: strawberry.ID = strawberry.field(description="Opaque id.")
    title: str = strawberry.field(description="1 to 100 characters.")
    description: str | None = strawberry.field(description="At most 2,000 characters.")
    role: str | None = strawberry.field(description="The user's role in it.")
    link: str | None = strawberry.field(description="An https:// link.")
    tags: list[str] = strawberry.field(description="Up to 10 tags.")
    started_on: str | None = strawberry.field(description="YYYY-MM-DD.")
    ended_on: str | None = strawberry.field(description="YYYY-MM-DD; null while ongoing.")

    @classmethod
    def of(cls, row: UserProject) -> Project:
        return cls(
            id=strawberry.ID(str(row.id)),
            title=row.title,
            description=row.description,
            role=row.role,
            link=row.link,
            tags=list(row.tags),
            started_on=row.started_on.isoformat() if row.started_on else None,
            ended_on=row.ended_on.isoformat() if row.ended_on else None,
        )


# Where a Project's fields live, for the compiled reads (src/resolvers/readplan).
PROJECT_SOURCE = Source(
    table=UserProject.__table__,  # type: ignore[attr-defined]  # SQLModel sets it
    fields={
        "id": id_column(),
        "title": column("title"),
        "description": column("description"),
        "role": column("role"),
        "link": column("link"),
        "tags": list_column("tags"),
        "startedOn": date_column("started_on"),
        "endedOn": date_column("ended_on"),
    },
)


@strawberry.type(description="A project and its cursor.")
class ProjectEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: Project = strawberry.field(description="The project.")


@strawberry.type(description="A page of projects, newest first.")
class ProjectConnection:
    edges: list[ProjectEdge] = strawberry.field(description="The projects of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


async def project_connection(
    info: Info, owner: uuid.UUID, first: int | None, after: str | None
) -> ProjectConnection:
    """A user's projects through the per-request loader: one query for a whole page of users."""
    page = await info.context.loaders.project_page_by_owner.load((owner, check_first(first), after))
    return ProjectConnection(
        edges=[ProjectEdge(cursor=c, node=Project.of(p)) for c, p in page.items],
        page_info=PageInfo.of(page),
    )


@strawberry.input(description="A project's fields.")
class ProjectInput:
    title: str = strawberry.field(description="1 to 100 characters.")
    description: str | None = strawberry.field(default=None, description="≤ 2,000 characters.")
    role: str | None = strawberry.field(default=None, description="≤ 50 characters.")
    link: str | None = strawberry.field(default=None, description="An https:// link.")
    tags: list[str] | None = strawberry.field(default=None, description="≤ 10 tags of ≤ 20.")
    started_on: str | None = strawberry.field(default=None, description="YYYY-MM or YYYY-MM-DD.")
    ended_on: str | None = strawberry.field(default=None, description="YYYY-MM or YYYY-MM-DD.")

    def data(self) -> projects.ProjectData:
        return projects.ProjectData(
            title=self.title,
            description=self.description,
            role=self.role,
            link=self.link,
            tags=self.tags,
            started_on=self.started_on,
            ended_on=self.ended_on,
        )


@strawberry.type(description="A project after a change.")
class ProjectPayload:
    project: Project | None = strawberry.field(default=None, description="The project.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


def _failed(errors: list[UserError]) -> ProjectPayload:
    return ProjectPayload(errors=errors)


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(
        description="Add a project (at most 30).", permission_classes=AUTHENTICATED
    )
    async def add_project(self, info: Info, input: ProjectInput) -> ProjectPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> ProjectPayload:
            require_registered(user)
            return ProjectPayload(
                project=Project.of(await projects.add_project(ctx.session, user, input.data()))
            )

        return await run_mutation(info, body, _failed)

    @strawberry.mutation(
        description="Change one of your projects.", permission_classes=AUTHENTICATED
    )
    async def update_project(
        self, info: Info, id: strawberry.ID, input: ProjectInput
    ) -> ProjectPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> ProjectPayload:
            row = await projects.update_project(
                ctx.session, user, str(id), input.data(), ctx.services.clock()
            )
            return ProjectPayload(project=Project.of(row))

        return await run_mutation(info, body, _failed)

    @strawberry.mutation(
        description="Delete one of your projects.", permission_classes=AUTHENTICATED
    )
    async def delete_project(self, info: Info, id: strawberry.ID) -> OkPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> OkPayload:
            await projects.delete_project(ctx.session, user, str(id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, lambda errors: OkPayload(ok=False, errors=errors))
