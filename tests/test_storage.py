"""Proof storage: the local folder, and an S3-compatible bucket signed with SigV4, checked by
a fake S3 server on 127.0.0.1 that verifies every signature itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from src.app import create_app
from src.config import Settings
from src.storage import InvalidKey, LocalStorage, S3Storage, StorageError
from src.storage.base import new_key
from tests.fakes.s3 import FakeS3
from tests.helpers import GraphQLClient, live_server, registered_user, running_app
from tests.uploads import png, report


@pytest.fixture
async def fake_s3() -> AsyncIterator[FakeS3]:
    fake = FakeS3()
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


def s3(fake: FakeS3, http: httpx.AsyncClient, **override: str) -> S3Storage:
    options = {
        "endpoint": fake.url,
        "bucket": fake.bucket,
        "access_key": fake.access_key,
        "secret_key": fake.secret_key,
        "region": fake.region,
        "addressing": "path",
        **override,
    }
    return S3Storage(http, **options)


async def test_s3_put_get_delete_with_verified_signatures(fake_s3: FakeS3) -> None:
    async with httpx.AsyncClient() as http:
        store = s3(fake_s3, http)
        key = new_key("png")
        data = png()
        await store.put(key, data, "image/png")
        assert fake_s3.objects[f"proofs/{key}"] == (data, "image/png")
        assert await store.get(key) == data
        await store.delete(key)
        assert await store.get(key) is None
        await store.delete(key)  # deleting what is gone is fine
    assert fake_s3.rejected == []


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"secret_key": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"access_key": "AKOTHER"}, "InvalidAccessKeyId"),
        ({"region": "ap-beijing"}, "AuthorizationHeaderMalformed"),
    ],
)
async def test_s3_refuses_bad_signatures(
    fake_s3: FakeS3, override: dict[str, str], problem: str
) -> None:
    async with httpx.AsyncClient() as http:
        store = s3(fake_s3, http, **override)
        with pytest.raises(StorageError):
            await store.put(new_key("png"), png(), "image/png")
        with pytest.raises(StorageError):
            await store.get(new_key("png"))
    assert fake_s3.objects == {}
    assert fake_s3.rejected == [problem, problem]


async def test_s3_unreachable_is_a_storage_error() -> None:
    async with httpx.AsyncClient() as http:
        store = S3Storage(
            http,
            endpoint="http://127.0.0.1:9",
            bucket="b",
            access_key="a",
            secret_key="s",
            region="r",
            addressing="path",
        )
        with pytest.raises(StorageError):
            await store.put(new_key("jpg"), b"x", "image/jpeg")


async def test_keys_cannot_leave_their_folder(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "proofs")
    for bad in ("../../etc/passwd", "a/b.png", "short.png", new_key("png") + ".html"):
        with pytest.raises(InvalidKey):
            await store.get(bad)
    key = new_key("webp")
    await store.put(key, b"data", "image/webp")
    assert await store.get(key) == b"data"
    await store.delete(key)
    assert await store.get(key) is None


async def test_reports_store_proofs_in_the_configured_bucket(
    settings: Settings, fake_s3: FakeS3
) -> None:
    configured = settings.model_copy(
        update={
            "storage_s3_endpoint": fake_s3.url,
            "storage_s3_bucket": fake_s3.bucket,
            "storage_s3_access_key": fake_s3.access_key,
            "storage_s3_secret_key": SecretStr(fake_s3.secret_key),
            "storage_s3_region": fake_s3.region,
            "storage_s3_addressing": "path",
        }
    )
    app = create_app(configured)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        alice, mallory = await registered_user(gql, "alice"), await registered_user(gql, "bob")
        payload = await report(
            http, alice["accessToken"], mallory["me"]["id"], [("a.png", png(), "image/png")]
        )
        assert payload["errors"] == []
        (stored,) = fake_s3.objects
        assert stored.startswith("proofs/") and stored.endswith(".png")
        assert not (configured.data_dir / "proofs").exists()
        # Served to moderators from the bucket through the signed link.
        key = stored.removeprefix("proofs/")
        link = app.state.services.proof_links.url(key, 60)
        served = await http.get(link)
        assert served.status_code == 200 and served.content == fake_s3.objects[stored][0]
