"""The GraphQL schema. `schema` is the export target (`qiaoqiao export-schema`)."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from src.config import Settings
from src.resolvers.errors import PublicError, UserFacingError
from src.schema.extensions import (
    ErrorPolicy,
    PageSizeLimit,
    TransactionPerOperation,
    limits_extension,
    validation_rules,
)
from src.schema.mutation import Mutation
from src.schema.query import Query
from src.schema.subscription import Subscription

log = logging.getLogger("qiaoqiao.graphql")


class AppSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Only unexpected errors deserve a stack trace; the client sees them masked.
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(
                original, PublicError | UserFacingError | GraphQLError
            ):
                log.error("unexpected error in %s", error.path, exc_info=original)


def build_schema(settings: Settings) -> strawberry.Schema:
    rules = validation_rules(settings)
    max_tokens = settings.max_tokens
    return AppSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
        extensions=[
            # Order matters: ErrorPolicy exits last, so it sees every other extension's errors.
            ErrorPolicy,
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            limits_extension(rules),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            PageSizeLimit,
            TransactionPerOperation,
        ],
    )


schema = build_schema(Settings(app_env="development"))
