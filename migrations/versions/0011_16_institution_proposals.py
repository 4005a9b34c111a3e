"""Institution proposals are private until approved: one listed institution per name, and each
user may propose a name once (others may propose the same name; approval merges them).
Moderation records approvals and rejections.

Revision ID: 0011_16_institution_proposals
Revises: 0011_15_anonymity
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_16_institution_proposals"
down_revision: str | None = "0011_15_anonymity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("NONE", "WARN", "BAN", "DISMISS", "HOLD", "GRANT_ROLE", "AVATAR_REMOVED")
AFTER = (*BEFORE, "INSTITUTION_APPROVED", "INSTITUTION_REJECTED")


def _actions(actions: tuple[str, ...]) -> None:
    name = op.f("ck_moderation_actions_action")  # already the full name: no convention
    op.drop_constraint(name, "moderation_actions", type_="check")
    listed = ", ".join(f"'{a}'" for a in actions)
    op.create_check_constraint(name, "moderation_actions", sa.text(f"action IN ({listed})"))


def upgrade() -> None:
    op.drop_index("uq_institutions_lower_name", table_name="institutions")
    op.create_index(
        "uq_institutions_lower_name",
        "institutions",
        [sa.literal_column("lower(name)")],
        unique=True,
        postgresql_where=sa.text("verified"),
    )
    op.create_index(
        "uq_institutions_lower_name_proposed_by_id",
        "institutions",
        [sa.literal_column("lower(name)"), "proposed_by_id"],
        unique=True,
        postgresql_where=sa.text("NOT verified"),
    )
    _actions(AFTER)


def downgrade() -> None:
    op.execute(
        "DELETE FROM moderation_actions"
        " WHERE action IN ('INSTITUTION_APPROVED', 'INSTITUTION_REJECTED')"
    )
    _actions(BEFORE)
    # Proposals that now share a name with another institution cannot stay.
    op.execute(
        "DELETE FROM institutions i WHERE NOT i.verified AND EXISTS (SELECT 1 FROM institutions o"
        " WHERE lower(o.name) = lower(i.name) AND o.id <> i.id AND (o.verified OR o.id < i.id))"
    )
    op.drop_index("uq_institutions_lower_name_proposed_by_id", table_name="institutions")
    op.drop_index("uq_institutions_lower_name", table_name="institutions")
    op.create_index(
        "uq_institutions_lower_name",
        "institutions",
        [sa.literal_column("lower(name)")],
        unique=True,
    )
