"""The root Mutation: a merge of each domain's field group."""

from __future__ import annotations

import strawberry

from src.schema.account import AccountMutation
from src.schema.ai import AIMutation
from src.schema.auth import AuthMutation
from src.schema.discovery import DiscoveryMutation
from src.schema.institutions import InstitutionMutation
from src.schema.matches import MatchMutation
from src.schema.me import MeMutation
from src.schema.plans import PlanMutation
from src.schema.projects import ProjectMutation
from src.schema.reports import ReportMutation
from src.schema.users import BlockMutation
from src.schema.whispers import WhisperMutation


@strawberry.type(description="Everything a client can change.")
class Mutation(
    AuthMutation,
    AccountMutation,
    MeMutation,
    ProjectMutation,
    BlockMutation,
    InstitutionMutation,
    PlanMutation,
    WhisperMutation,
    MatchMutation,
    DiscoveryMutation,
    ReportMutation,
    AIMutation,
):
    pass
