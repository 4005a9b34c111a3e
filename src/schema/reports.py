"""Reports and moderation at the GraphQL boundary."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.file_uploads import Upload

from src.auth.permissions import AUTHENTICATED, MODERATOR
from src.models import UserReport
from src.resolvers import media_checks, moderation, reports
from src.resolvers.pagination import Page
from src.schema.common import PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.users import User

# Who a moderator sees as the reporter once the reporter deleted their account: the report
# stays for moderation, but nothing leads back to the person any more.
DELETED_REPORTER = uuid.UUID(int=0)


@strawberry.enum(description="Why someone is reported.")
class ReportReason(Enum):
    HARASSMENT = "HARASSMENT"
    SPAM = "SPAM"
    FAKE_PROFILE = "FAKE_PROFILE"
    INAPPROPRIATE_CONTENT = "INAPPROPRIATE_CONTENT"
    SCAM = "SCAM"
    UNDERAGE = "UNDERAGE"
    OTHER = "OTHER"


@strawberry.enum(description="Where a report stands.")
class ReportStatus(Enum):
    PENDING = "PENDING"
    RESOLVED = "RESOLVED"
    DISMISSED = "DISMISSED"


@strawberry.enum(description="What a moderator did about a report.")
class ReportAction(Enum):
    NONE = "NONE"
    WARN = "WARN"
    BAN = "BAN"


@strawberry.type(
    description="A report of a user. Moderators see everything; a reporter sees their own "
    "reports' status and decision, never proofs or notes."
)
class Report:
    row: strawberry.Private[UserReport]
    for_moderator: strawberry.Private[bool]

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="Why.")
    def reason(self) -> ReportReason:
        return ReportReason(self.row.reason)

    @strawberry.field(description="The reporter's words, at most 1,000 characters.")
    def details(self) -> str | None:
        return self.row.details

    @strawberry.field(description="PENDING until a moderator decides.")
    def status(self) -> ReportStatus:
        return ReportStatus(self.row.status)

    @strawberry.field(description="When it was filed.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(
        description="Who reported. A reporter who deleted their account appears with the "
        "id 00000000-0000-0000-0000-000000000000 and no profile."
    )
    def reporter(self) -> User:
        return User(uid=self.row.reporter_id or DELETED_REPORTER)

    @strawberry.field(description="Who was reported.")
    def reported(self) -> User:
        return User(uid=self.row.reported_id)

    @strawberry.field(
        description="Moderators: links to the proof images, valid for a few minutes. "
        "Everyone else: empty."
    )
    def proof_urls(self, info: Info) -> list[str]:
        if not self.for_moderator:
            return []
        links, ttl = info.context.services.proof_links, info.context.settings.proof_url_ttl_s
        return [links.url(key, ttl) for key in self.row.proof_keys]

    @strawberry.field(description="The moderator's decision, once decided.")
    def decision(self) -> ReportAction | None:
        return ReportAction(self.row.decision) if self.row.decision else None

    @strawberry.field(description="Moderators only: the moderator's note.")
    def note(self) -> str | None:
        return self.row.note if self.for_moderator else None

    @strawberry.field(
        description="Moderators only: automatic findings, e.g. PROOF_RISKY when WeChat's "
        "image check judged a proof risky. Empty for everyone else."
    )
    def flags(self) -> list[str]:
        return list(self.row.flags) if self.for_moderator else []


@strawberry.type(description="A report and its cursor.")
class ReportEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: Report = strawberry.field(description="The report.")


@strawberry.type(description="A page of reports.")
class ReportConnection:
    edges: list[ReportEdge] = strawberry.field(description="The reports of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


def report_connection(page: Page[UserReport], *, for_moderator: bool) -> ReportConnection:
    return ReportConnection(
        edges=[
            ReportEdge(cursor=c, node=Report(row=r, for_moderator=for_moderator))
            for c, r in page.items
        ],
        page_info=PageInfo.of(page),  # type: ignore[arg-type]
    )


@strawberry.type(description="A report after a change.")
class ReportPayload:
    report: Report | None = strawberry.field(default=None, description="The report.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.input(description="Whom to report and why.")
class ReportInput:
    reported_user_id: strawberry.ID = strawberry.field(description="The user to report.")
    reason: ReportReason = strawberry.field(description="Why.")
    details: str | None = strawberry.field(default=None, description="At most 1,000 characters.")


@strawberry.input(description="A moderator's decision on a report.")
class ResolveReportInput:
    report_id: strawberry.ID = strawberry.field(description="The report.")
    status: ReportStatus = strawberry.field(description="RESOLVED or DISMISSED.")
    action: ReportAction = strawberry.field(description="NONE, WARN or BAN (DISMISSED: NONE).")
    note: str | None = strawberry.field(default=None, description="At most 1,000 characters.")


def _failed(errors: list[UserError]) -> ReportPayload:
    return ReportPayload(errors=errors)


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="Moderators only. Reports newest first, optionally of one status.",
        permission_classes=MODERATOR,
    )
    async def reports(
        self,
        info: Info,
        status: ReportStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> ReportConnection:
        page = await reports.reports_page(
            info.context.session,
            status=status.value if status else None,
            first=first,
            after=after,
        )
        return report_connection(page, for_moderator=True)


@strawberry.type
class ReportMutation:
    @strawberry.mutation(
        description="Report a user, with up to 4 proof images (JPEG, PNG or WebP, at most "
        "5 MB each) sent as a GraphQL multipart request with the header "
        "`Apollo-Require-Preflight`. A second report of the same person within a day adds "
        "to your pending one.",
        permission_classes=AUTHENTICATED,
    )
    async def report_user(
        self, info: Info, input: ReportInput, proofs: list[Upload] | None = None
    ) -> ReportPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()
        data = reports.NewReport(
            reported_user_id=str(input.reported_user_id),
            reason=input.reason.value,
            details=input.details,
            proofs=list(proofs or []),
        )

        async def body() -> ReportPayload:
            filed = await reports.report_user(ctx.session, ctx.services, viewer, data)
            if filed.new_keys:
                services, openid = ctx.services, viewer.wechat_openid
                ctx.after_commit.append(
                    lambda: media_checks.check_proofs(
                        services,
                        report_id=filed.report.id,
                        uploader_id=viewer.id,
                        openid=openid,
                        keys=filed.new_keys,
                    )
                )
            return ReportPayload(report=Report(row=filed.report, for_moderator=False))

        return await run_mutation(info, body, _failed)

    @strawberry.mutation(
        description="Moderators only. Decide a pending report; BAN suspends the user at once.",
        permission_classes=MODERATOR,
    )
    async def resolve_report(self, info: Info, input: ResolveReportInput) -> ReportPayload:
        ctx = info.context
        moderator = await ctx.require_viewer()
        data = moderation.Resolution(
            report_id=str(input.report_id),
            status=input.status.value,
            action=input.action.value,
            note=input.note,
        )

        async def body() -> ReportPayload:
            report = await moderation.resolve_report(ctx.session, moderator, data)
            return ReportPayload(report=Report(row=report, for_moderator=True))

        return await run_mutation(info, body, _failed)
