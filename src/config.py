"""All configuration in one validated object, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development secret that production refuses: anyone can read it here.
DEV_SECRET_KEY = "qiaoqiao-development-secret-key-do-not-use-in-production"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./.qiaoqiao")
    database_url: str | None = None
    qdrant_url: str | None = None
    secret_key: str = DEV_SECRET_KEY

    cors_allowed_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)

    # GraphQL request limits (SECURITY.md 1-2)
    max_query_depth: int = Field(10, ge=1)
    max_aliases: int = Field(15, ge=1)
    max_tokens: int = Field(2000, ge=10)
    max_page_size: int = Field(100, ge=1)
    default_page_size: int = Field(20, ge=1)

    # Database behaviour
    db_pool_size: int = Field(10, ge=1)
    db_connect_timeout_s: float = Field(5.0, gt=0)
    db_statement_timeout_ms: int = Field(10_000, ge=100)
    ready_timeout_s: float = Field(2.0, gt=0)

    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON in production, text in development

    # Development-only switches; production refuses to start with any of them on.
    graphiql: bool | None = None  # default: on in development

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if not self.is_production:
            return self
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
        if self.graphiql:
            problems.append("GRAPHIQL is a development switch")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
