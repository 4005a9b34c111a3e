"""Reports and moderation at the GraphQL boundary."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from src.auth.permissions import AUTHENTICATED, MODERATOR
from src.models import UserReport
from src.resolvers import media_checks, moderation, reports
from src.resolvers.pagination import Page
from src.schema.common import PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.users import User

# Someone a report may not name: the reporter, to moderators, once they deleted their account;
# the sender of a reported whisper, to its reporter (always) and to moderators (once deleted).
# A user with this id has no profile, no projects and no membership.
NOBODY = uuid.UUID(int=0)


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
    description="A report of a user or of a whisper's sender. Moderators see everything; a "
    "reporter sees their own reports' status and decision, never proofs or notes — and for a "
    "whisper report never who sent it, nor the decision."
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

    @strawberry.field(
        description="PENDING until a moderator decides. A whisper report's reporter sees "
        "RESOLVED once it is decided, whatever the decision."
    )
    def status(self) -> ReportStatus:
        if self.for_moderator:
            return ReportStatus(self.row.status)
        return ReportStatus(reports.reporter_status(self.row))

    @strawberry.field(description="When it was filed.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(
        description="Who reported. A reporter who deleted their account appears with the "
        "id 00000000-0000-0000-0000-000000000000 and no profile."
    )
    def reporter(self) -> User:
        return User(uid=self.row.reporter_id or NOBODY, unrestricted=self.for_moderator)

    @strawberry.field(
        description="Who was reported. For the reporter of a whisper, always the id "
        "00000000-0000-0000-0000-000000000000 with no profile: they never learn who sent it "
        "(moderators see the sender, or that id once the sender deleted their account). "
        "Someone hidden from the reporter shows only their id."
    )
    def reported(self) -> User:
        if self.for_moderator:
            return User(uid=self.row.reported_id or NOBODY, unrestricted=True)
        if self.row.kind == "whisper" or self.row.reported_id is None:
            return User(uid=NOBODY)
        return User(uid=self.row.reported_id)

    @strawberry.field(description="The reported whisper (reportWhisper); null for a user report.")
    def whisper_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.row.whisper_id)) if self.row.whisper_id else None

    @strawberry.field(
        description="Moderators only: the reported whisper's text as it was when reported."
    )
    def whisper_content(self) -> str | None:
        return self.row.whisper_content if self.for_moderator else None

    @strawberry.field(
        description="Moderators: links to the proof images, valid for a few minutes. "
        "Everyone else: empty."
    )
    def proof_urls(self, info: Info) -> list[str]:
        if not self.for_moderator:
            return []
        links, ttl = info.context.services.proof_links, info.context.settings.proof_url_ttl_s
        return [links.url(key, ttl) for key in self.row.proof_keys]

    @strawberry.field(
        description="The moderator's decision, once decided (never for a whisper report's "
        "reporter)."
    )
    def decision(self) -> ReportAction | None:
        decision = self.row.decision if self.for_moderator else reports.reporter_decision(self.row)
        return ReportAction(decision) if decision else None

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
        page_info=PageInfo.of(page),
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


@strawberry.input(description="Which whisper's sender to report and why.")
class ReportWhisperInput:
    whisper_id: strawberry.ID = strawberry.field(description="A whisper you received.")
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


async def _file(info: Info, file: Any, data: reports.NewReport) -> ReportPayload:
    """reportUser and reportWhisper: file, then send new proofs to the image check after
    commit."""
    ctx = info.context
    viewer = await ctx.require_viewer()

    async def body() -> ReportPayload:
        filed = await file(ctx.session, ctx.services, viewer, data)
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


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="Moderators only. Reports newest first, optionally of one status; never "
        "the ones about you or by you (another moderator decides those).",
        permission_classes=MODERATOR,
    )
    async def reports(
        self,
        info: Info,
        status: ReportStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> ReportConnection:
        moderator = await info.context.require_viewer()
        page = await reports.reports_page(
            info.context.session,
            moderator.id,
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
        data = reports.NewReport(
            reported_user_id=str(input.reported_user_id),
            reason=input.reason.value,
            details=input.details,
            proofs=list(proofs or []),
        )
        return await _file(info, reports.report_user, data)

    @strawberry.mutation(
        description="Report the sender of a whisper you received; moderators see who it is, "
        "you never do. Up to 4 proof images, as for reportUser; a second report of the same "
        "whisper within a day adds to your pending one. Not counted toward the automatic "
        "hold. NOT_FOUND for a whisper you did not receive.",
        permission_classes=AUTHENTICATED,
    )
    async def report_whisper(
        self, info: Info, input: ReportWhisperInput, proofs: list[Upload] | None = None
    ) -> ReportPayload:
        data = reports.NewReport(
            whisper_id=str(input.whisper_id),
            reason=input.reason.value,
            details=input.details,
            proofs=list(proofs or []),
        )
        return await _file(info, reports.report_whisper, data)

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
            report = await moderation.resolve_report(
                ctx.session, moderator, data, ctx.services.clock()
            )
            return ReportPayload(report=Report(row=report, for_moderator=True))

        return await run_mutation(info, body, _failed)
