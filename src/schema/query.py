"""The root Query: a merge of each domain's field group."""

from __future__ import annotations

import strawberry

from src.schema.ai import AIQuery
from src.schema.discovery import DiscoveryQuery
from src.schema.institutions import InstitutionQuery
from src.schema.matches import MatchQuery
from src.schema.me import MeQuery
from src.schema.plans import PlanQuery
from src.schema.reports import ReportQuery
from src.schema.users import UserQuery
from src.schema.whispers import WhisperQuery


@strawberry.type
class HealthQuery:
    @strawberry.field(
        description="Liveness of the API itself; readiness of dependencies is GET /ready."
    )
    def health(self) -> str:
        return "ok"


@strawberry.type(description="Everything a client can read.")
class Query(
    HealthQuery,
    MeQuery,
    UserQuery,
    DiscoveryQuery,
    WhisperQuery,
    MatchQuery,
    InstitutionQuery,
    ReportQuery,
    AIQuery,
    PlanQuery,
):
    pass
