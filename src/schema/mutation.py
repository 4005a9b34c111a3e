"""The root Mutation: a merge of each domain's field group."""

from __future__ import annotations

import strawberry

from src.schema.account import AccountMutation
from src.schema.auth import AuthMutation


@strawberry.type(description="Everything a client can change.")
class Mutation(AuthMutation, AccountMutation):
    pass
