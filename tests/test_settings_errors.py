"""Settings problems a person can act on, and secrets that never show (SECURITY.md 37):
every problem at once, one line each naming the variable and what to set, exit 2, no
traceback, and no secret value in any error, repr or log line."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from src.cli import HANDLERS, main
from src.config import Settings, SettingsInvalid, get_settings
from tests.cli_helpers import cli_env, run_cli
from tests.fakes.wechat import FakeWechat
from tests.helpers import LOGIN, GraphQLClient

# Distinctive values, so that finding one anywhere is a leak and nothing else.
SECRETS = {
    "SECRET_KEY": "sk-LEAK-0001-short",
    "PREVIOUS_SECRET_KEYS": '["sk-LEAK-0002-previous-key-of-forty-characters-xxxx"]',
    "WECHAT_APP_SECRET": "wx-LEAK-0003",
    "TENCENT_SECRET_KEY": "tc-LEAK-0004",
    "WECHAT_PAY_PRIVATE_KEY": "pem-LEAK-0005",
    "WECHAT_PAY_API_V3_KEY": "v3-LEAK-0006-not-32-bytes",
    "STORAGE_S3_SECRET_KEY": "s3-LEAK-0007",
    "WECHAT_PUSH_TOKEN": "push-LEAK-0008-a-token-longer-than-32-characters",
    "LLM_API_KEY": "llm-LEAK-0009",
    "DATABASE_URL": "postgresql://qq:pw-LEAK-0010@127.0.0.1:1/qq",
    "REDIS_URL": "redis://:rd-LEAK-0011@127.0.0.1:1/0",
}
LEAKS = re.findall(r"[a-z0-9]+-LEAK-\d{4}[a-z0-9-]*", " ".join(SECRETS.values()))

# Broken in every way a variable can be: a type, a bound, a choice, JSON, a combination, and
# production's own rules.
BROKEN = {
    **SECRETS,
    "APP_ENV": "production",
    "MAX_QUERY_DEPTH": "deep",
    "OPERATION_TIMEOUT_S": "-1",
    "MINIPROGRAM_STATE": "beta",
    "CORS_ALLOWED_ORIGINS": "https://not-a-json-list.example",
    "LLM_MODEL": "deepseek-chat",  # without LLM_BASE_URL
    "SMS_PROVIDER": "tencent",  # without the other TENCENT_* credentials
    "GRAPHIQL": "true",
}
# Each variable (or group) that must be named, at the start of its own line.
NAMED = [
    "MAX_QUERY_DEPTH",
    "OPERATION_TIMEOUT_S",
    "MINIPROGRAM_STATE",
    "CORS_ALLOWED_ORIGINS",
    "LLM_BASE_URL, LLM_MODEL",
    "WECHAT_PUSH_TOKEN",
    "WECHAT_PAY_API_V3_KEY",
    "SECRET_KEY",
    "GRAPHIQL",
    "WECHAT_APP_ID",
    "TENCENT_SECRET_ID",
]


def assert_no_secret(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"a secret value leaked: {leak}"
    assert "-LEAK-" not in text


@pytest.fixture
def broken_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env


def test_every_problem_is_reported_at_once(broken_env: None) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        get_settings()
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0].startswith(f"{len(lines) - 1} problems in the configuration")
    problems = [line.strip() for line in lines[1:]]
    for name in NAMED:
        assert any(p.startswith(name) for p in problems), f"{name} not reported: {text}"
    # One line per problem, each saying what to do.
    assert len(problems) == len(set(problems))
    assert all(re.match(r"^[A-Z0-9_, ]+: \S", p) for p in problems), text
    assert "MAX_QUERY_DEPTH: is not valid: set a whole number ≥ 1" in text
    assert "CORS_ALLOWED_ORIGINS: is not valid JSON" in text
    assert_no_secret(text)
    assert_no_secret(repr(caught.value))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_every_command_reports_them_with_exit_2(
    broken_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = {"token": ["alice"], "grant-role": ["x", "user"], "model prepare": []}
    for name in HANDLERS:
        argv = name.split() + arguments.get(name, [])
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2, name
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"qiaoqiao {argv[0]}: ") and "problems in the configuration" in err
        assert "SECRET_KEY: production needs" in err
        assert_no_secret(err)


async def test_serve_with_broken_settings_exits_2_without_traceback(tmp_path: Path) -> None:
    run = await run_cli("serve", env=cli_env(**BROKEN), cwd=tmp_path)
    assert run.code == 2
    assert "Traceback" not in run.err
    assert run.out == ""
    lines = run.err.splitlines()
    assert lines[0].startswith("qiaoqiao serve: ") and len(lines) >= len(NAMED) + 1
    assert_no_secret(run.err)


def test_secret_settings_are_secret_types() -> None:
    secret_fields = {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    assert {name.lower() for name in SECRETS} <= secret_fields


def test_secrets_never_show_in_repr_dumps_or_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {name.lower(): value for name, value in SECRETS.items()}
    values["previous_secret_keys"] = [SecretStr(LEAKS[1])]
    values["wechat_pay_api_v3_key"] = "v3-LEAK-0006-exactly-32-bytes-xx"
    values["wechat_push_token"] = "push-LEAK-0008"
    values["secret_key"] = "sk-LEAK-0001-long-enough-for-production-use"
    settings = Settings(
        _env_file=None, llm_base_url="http://127.0.0.1:1/v1", llm_model="m", **values
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("qiaoqiao.test-secrets")
    logger.addHandler(handler)
    try:
        logger.warning("settings: %s / %r", settings, settings)
    finally:
        logger.removeHandler(handler)
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        stream.getvalue(),
    ):
        assert_no_secret(shown)
    # Still usable where they are used.
    assert settings.secret_key.get_secret_value().startswith("sk-LEAK-0001")


async def test_outgoing_requests_never_log_the_app_secret(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat, caplog: pytest.LogCaptureFixture
) -> None:
    """WeChat's login API takes the app secret in its query string, which httpx logged with
    every request at INFO."""
    fake_wechat.add_login("code-7", "openid-erin")
    with caplog.at_level(logging.DEBUG):
        answer = await wx_gql(LOGIN, {"code": "code-7"})
    assert answer.data["wechatLogin"]["accessToken"]
    assert fake_wechat.calls_to("/sns/jscode2session") == 1
    assert fake_wechat.app_secret not in caplog.text
