"""starter list of institutions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

"""
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DATA = Path(__file__).resolve().parents[1] / "data" / "institutions.json"

institutions = sa.table(
    "institutions",
    sa.column("id", sa.Uuid),
    sa.column("name", sa.Text),
    sa.column("aliases", postgresql.ARRAY(sa.Text)),
    sa.column("kind", sa.Text),
    sa.column("city", sa.Text),
    sa.column("verified", sa.Boolean),
)


def _rows() -> list[dict]:
    # Stable ids, so `qiaoqiao seed` and later data migrations recognise the same rows.
    return [
        {**row, "id": uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:institution:{row['name']}"),
         "verified": True}
        for row in json.loads(DATA.read_text(encoding="utf-8"))
    ]


def upgrade() -> None:
    op.execute(postgresql.insert(institutions).values(_rows()).on_conflict_do_nothing())


def downgrade() -> None:
    ids = [row["id"] for row in _rows()]
    op.execute(institutions.delete().where(institutions.c.id.in_(ids)))
