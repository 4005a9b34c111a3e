"""Reports of users, with image proofs and the moderator's decision."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, text_array, timestamptz, uuid_pk

REPORT_REASONS = (
    "HARASSMENT",
    "SPAM",
    "FAKE_PROFILE",
    "INAPPROPRIATE_CONTENT",
    "SCAM",
    "UNDERAGE",
    "OTHER",
)
REPORT_STATUSES = ("PENDING", "RESOLVED", "DISMISSED")
REPORT_ACTIONS = ("NONE", "WARN", "BAN")
# A report names a user (reportUser) or a whisper whose sender the reporter may not know
# (reportWhisper): moderators see that sender, the reporter never does.
REPORT_KINDS = ("user", "whisper")


class UserReport(SQLModel, table=True):
    __tablename__ = "user_reports"
    __table_args__ = (
        CheckConstraint(one_of("reason", REPORT_REASONS), name="reason"),
        CheckConstraint(one_of("status", REPORT_STATUSES), name="status"),
        CheckConstraint(
            f"decision IS NULL OR {one_of('decision', REPORT_ACTIONS)}", name="decision"
        ),
        CheckConstraint("char_length(details) <= 1000", name="details_length"),
        CheckConstraint("cardinality(proof_keys) <= 4", name="proofs_count"),
        CheckConstraint("reporter_id IS NULL OR reporter_id <> reported_id", name="not_self"),
        CheckConstraint(one_of("kind", REPORT_KINDS), name="kind"),
        # A whisper report's sender may have deleted their account (no sender link left).
        CheckConstraint("kind = 'whisper' OR reported_id IS NOT NULL", name="reported"),
        # The moderators' queue by status, and "reports against X" for automatic protection.
        Index("ix_user_reports_status_created_at", "status", "created_at", "id"),
        Index("ix_user_reports_reported_id_created_at", "reported_id", "created_at"),
    )

    id: uuid.UUID = uuid_pk()
    # SET NULL: the report stays for moderation when the reporter deletes their account.
    reporter_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", index=True
    )
    reported_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(default="user", sa_type=Text, sa_column_kwargs={"server_default": "user"})
    # reportWhisper: the whisper, and its text as it was when reported (moderators judge it
    # even if the whisper is gone by then).
    whisper_id: uuid.UUID | None = Field(
        default=None, foreign_key="whispers.id", ondelete="SET NULL", index=True
    )
    whisper_content: str | None = Field(default=None, sa_type=Text)
    reason: str = Field(sa_type=Text)
    details: str | None = Field(default=None, sa_type=Text)
    # Storage keys of the stripped proof images, never public URLs.
    proof_keys: list[str] = text_array()
    status: str = Field(default="PENDING", sa_type=Text)
    decision: str | None = Field(default=None, sa_type=Text)
    note: str | None = Field(default=None, sa_type=Text)
    moderator_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    resolved_at: datetime | None = timestamptz()
    # Raised by automatic checks for the moderator, e.g. PROOF_RISKY from WeChat's media check.
    flags: list[str] = text_array()
    # When a repeated report by the same reporter was merged into this one.
    updated_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


MODERATION_ACTIONS = (*REPORT_ACTIONS, "DISMISS", "HOLD", "GRANT_ROLE", "AVATAR_REMOVED")


class ModerationAction(SQLModel, table=True):
    """Every moderation step, by a moderator or by the system (moderator_id null): who, when,
    what, to whom, and on which report."""

    __tablename__ = "moderation_actions"
    __table_args__ = (
        CheckConstraint(one_of("action", MODERATION_ACTIONS), name="action"),
        Index("ix_moderation_actions_target_id_created_at", "target_id", "created_at"),
    )

    id: uuid.UUID = uuid_pk()
    moderator_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", index=True
    )
    target_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    report_id: uuid.UUID | None = Field(
        default=None, foreign_key="user_reports.id", ondelete="SET NULL", index=True
    )
    action: str = Field(sa_type=Text)
    note: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at()


MEDIA_CHECK_KINDS = ("proof", "avatar")
MEDIA_CHECK_VERDICTS = ("pending", "pass", "review", "risky")


class MediaCheck(SQLModel, table=True):
    """An image sent to WeChat's asynchronous media check, awaiting (or given) its verdict."""

    __tablename__ = "media_checks"
    __table_args__ = (
        CheckConstraint(one_of("kind", MEDIA_CHECK_KINDS), name="kind"),
        CheckConstraint(one_of("verdict", MEDIA_CHECK_VERDICTS), name="verdict"),
    )

    trace_id: str = Field(primary_key=True, sa_type=Text)
    kind: str = Field(sa_type=Text)
    # The uploader of a proof, or the owner of an avatar.
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    report_id: uuid.UUID | None = Field(
        default=None, foreign_key="user_reports.id", ondelete="CASCADE", index=True
    )
    # The proof's storage key, or the avatar URL that was checked (a later avatar is not
    # removed for an earlier one's verdict).
    subject: str = Field(sa_type=Text)
    verdict: str = Field(default="pending", sa_type=Text)
    label: int | None = None
    decided_at: datetime | None = timestamptz()
    created_at: datetime = created_at()
