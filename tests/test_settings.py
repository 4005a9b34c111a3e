"""Settings validation and production hardening (SECURITY.md 5)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette

from src.app import create_app
from src.config import DEV_SECRET_KEY, Settings, reveal
from src.db import async_url
from tests.helpers import GraphQLClient, running_app

STRONG = "x" * 48


# Secret types already: tests copy these into settings with `model_copy`, which validates nothing.
PRODUCTION = {
    "app_env": "production",
    "secret_key": SecretStr(STRONG),
    "wechat_app_id": "wx-app",
    "wechat_app_secret": SecretStr("wx-secret"),
    "sms_provider": "tencent",
    "tencent_secret_id": "id",
    "tencent_secret_key": SecretStr("key"),
    "tencent_sms_app_id": "1400000000",
    "tencent_sms_sign_name": "悄悄",
    "tencent_sms_template_id": "100",
}


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {**PRODUCTION, **overrides}
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "short"])
def test_production_refuses_weak_or_default_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(secret_key=secret)


def test_production_refuses_development_switches() -> None:
    with pytest.raises(ValidationError, match="GRAPHIQL"):
        production(graphiql=True)
    with pytest.raises(ValidationError, match="development login"):
        production(wechat_app_id=None)
    with pytest.raises(ValidationError, match="SMS_PROVIDER=console"):
        production(sms_provider="console")
    with pytest.raises(ValidationError, match="TENCENT"):
        production(tencent_secret_key=None)
    assert not production().dev_login_enabled


def test_development_defaults_are_usable() -> None:
    settings = Settings(_env_file=None)
    assert settings.app_env == "development"
    assert settings.graphiql_enabled
    assert str(settings.data_dir) == ".qiaoqiao"


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name.upper(), value if isinstance(value, str) else reveal(value))
    monkeypatch.setenv("WS_ALLOWED_ORIGINS", '["https://servicewechat.com"]')
    settings = Settings(_env_file=None)
    assert settings.is_production
    assert settings.ws_allowed_origins == ["https://servicewechat.com"]


def test_database_urls_get_the_async_driver() -> None:
    assert async_url("postgresql://u:p@db:5432/app") == "postgresql+asyncpg://u:p@db:5432/app"
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://u@db/app")


@pytest.fixture
def production_app(database_url: str) -> Starlette:
    return create_app(production(database_url=database_url))


async def test_production_hides_introspection_suggestions_and_graphiql(
    production_app: Starlette,
) -> None:
    async with running_app(production_app) as http:
        gql = GraphQLClient(http)
        introspection = await gql("{ __schema { types { name } } }")
        assert introspection.data is None
        assert "introspection" in introspection.errors[0]["message"].lower()
        typo = await gql("{ healt }")
        assert "Did you mean" not in typo.errors[0]["message"]
        ide = await http.get("/graphql", headers={"accept": "text/html"})
        assert ide.status_code != 200 or "graphiql" not in ide.text.lower()
        assert (await gql("{ health }")).data == {"health": "ok"}


async def test_development_serves_graphiql(http) -> None:
    ide = await http.get("/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()


# Each of graphql-core's suggestions: a field, an argument, a type, an enum value and an input
# field in the document; an enum value and an input field in variables (coercion).
MISTAKES = [
    ("{ healt }", None),
    ("{ institutions(firs: 1) { edges { cursor } } }", None),
    ("query ($k: InstitutionKnd) { health }", None),
    ("{ institutions(kind: UNIVERSIT) { edges { cursor } } }", None),
    ('{ discover(filter: {cit: "x"}) { degraded } }', None),
    (
        "query ($k: InstitutionKind) { institutions(kind: $k) { edges { cursor } } }",
        {"k": "UNIVERSIT"},
    ),
    ("query ($f: DiscoveryFilter) { discover(filter: $f) { degraded } }", {"f": {"cit": "x"}}),
]


async def test_production_suggests_nothing_anywhere(
    production_app: Starlette, settings: Settings
) -> None:
    async with running_app(production_app) as http, running_app(create_app(settings)) as dev:
        for query, variables in MISTAKES:
            hidden = await GraphQLClient(http)(query, variables)
            shown = await GraphQLClient(dev)(query, variables)
            assert hidden.errors and shown.errors, query
            assert "Did you mean" in str(shown.errors), query  # the mistake is suggestible
            assert "Did you mean" not in str(hidden.errors), hidden.errors
            assert hidden.error_codes[0] in ("GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")
