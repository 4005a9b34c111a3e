"""Phone login with texted codes (SECURITY.md 18), through a fake Tencent Cloud SMS that checks
the TC3-HMAC-SHA256 signature."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.fakes.tencent_sms import FakeTencentSms
from tests.helpers import GraphQLClient, running_app, sql

PHONE = "13800138000"
E164 = "+8613800138000"
SEND = """mutation ($phone: String!) {
  sendSmsCode(phone: $phone) { sent retryAfterSeconds errors { code field retryAfterSeconds } }
}"""
SMS_LOGIN = """mutation ($phone: String!, $code: String!) {
  smsLogin(phone: $phone, code: $code) {
    accessToken isNewUser me { phone } errors { code field }
  }
}"""


async def send(gql: GraphQLClient, phone: str = PHONE) -> dict:
    return (await gql(SEND, {"phone": phone})).data["sendSmsCode"]


async def sms_login(gql: GraphQLClient, code: str, phone: str = PHONE) -> dict:
    return (await gql(SMS_LOGIN, {"phone": phone, "code": code})).data["smsLogin"]


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_code_is_texted_signed_and_logs_in_once(
    wx_gql: GraphQLClient, fake_sms: FakeTencentSms
) -> None:
    sent = await send(wx_gql, "+86 138-0013-8000")
    assert sent == {"sent": True, "retryAfterSeconds": 60, "errors": []}
    assert fake_sms.rejected == []
    code = fake_sms.last_code(E164)
    assert len(code) == 6 and code.isdigit()

    first = await sms_login(wx_gql, code)
    assert first["errors"] == []
    assert first["isNewUser"] is True
    assert first["me"] == {"phone": E164}
    assert codes(await sms_login(wx_gql, code)) == ["INVALID_CODE"]  # single use


async def test_codes_are_stored_hashed_and_never_logged(
    wx_app: Starlette, fake_sms: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(wx_app) as http:
        gql = GraphQLClient(http)
        with caplog.at_level(logging.DEBUG):
            await send(gql)
            code = fake_sms.last_code(E164)
            await sms_login(gql, code)
        stored = await sql(wx_app, "SELECT string_agg(code_hash, ',') FROM sms_codes")
    assert code not in str(stored)
    assert code not in caplog.text
    assert PHONE not in caplog.text  # phone numbers are masked in logs


async def test_five_wrong_codes_burn_it(wx_gql: GraphQLClient, fake_sms: FakeTencentSms) -> None:
    await send(wx_gql)
    right = fake_sms.last_code(E164)
    wrong = "000000" if right != "000000" else "111111"
    results = [codes(await sms_login(wx_gql, wrong)) for _ in range(5)]
    assert results == [["INVALID_CODE"]] * 4 + [["TOO_MANY_ATTEMPTS"]]
    assert codes(await sms_login(wx_gql, right)) == ["INVALID_CODE"]  # burned


async def test_resend_waits_sixty_seconds(wx_gql: GraphQLClient) -> None:
    assert (await send(wx_gql))["sent"] is True
    again = await send(wx_gql)
    assert again["sent"] is False
    assert codes(again) == ["RATE_LIMITED"]
    assert 55 <= again["retryAfterSeconds"] <= 60


async def test_expired_code_is_refused(wx_app: Starlette, fake_sms: FakeTencentSms) -> None:
    async with running_app(wx_app) as http:
        gql = GraphQLClient(http)
        await send(gql)
        await sql(wx_app, "UPDATE sms_codes SET expires_at = now() - interval '1 second'")
        assert codes(await sms_login(gql, fake_sms.last_code(E164))) == ["CODE_EXPIRED"]


async def test_daily_caps_per_phone_and_per_ip(wx_settings: Settings) -> None:
    capped = wx_settings.model_copy(update={"sms_daily_per_phone": 2, "sms_daily_per_ip": 3})
    app = create_app(capped)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        for _ in range(2):
            assert (await send(gql))["sent"] is True
            # Step past the resend interval without waiting a minute.
            await sql(app, "UPDATE sms_codes SET created_at = created_at - interval '2 minutes'")
        assert codes(await send(gql)) == ["RATE_LIMITED"]
        assert (await send(gql, "13900139000"))["sent"] is True  # third from this IP
        await sql(app, "UPDATE sms_codes SET created_at = created_at - interval '2 minutes'")
        assert codes(await send(gql, "13700137000")) == ["RATE_LIMITED"]  # fourth: IP cap


async def test_hundred_aliased_logins_count_as_hundred(
    wx_gql: GraphQLClient, fake_sms: FakeTencentSms
) -> None:
    await send(wx_gql)
    right = fake_sms.last_code(E164)
    wrong = "000000" if right != "000000" else "111111"
    fields = " ".join(
        f'a{i}: smsLogin(phone: "{PHONE}", code: "{wrong}") {{ errors {{ code }} }}'
        for i in range(100)
    )
    response = await wx_gql(f"mutation {{ {fields} }}")
    # The alias limit stops such a document before anything runs ...
    assert response.data is None
    assert "aliases" in response.errors[0]["message"]
    # ... and within the alias limit every alias is counted: 15 tries, burned after 5, the
    # per-phone login limit (10 per 10 minutes) reached after 10.
    fields = " ".join(
        f'a{i}: smsLogin(phone: "{PHONE}", code: "{wrong}") {{ errors {{ code }} }}'
        for i in range(15)
    )
    response = await wx_gql(f"mutation {{ {fields} }}")
    results = [response.data[f"a{i}"]["errors"][0]["code"] for i in range(15)]
    assert (
        results
        == ["INVALID_CODE"] * 4
        + ["TOO_MANY_ATTEMPTS"]
        + ["INVALID_CODE"] * 5
        + ["RATE_LIMITED"] * 5
    )
    assert codes(await sms_login(wx_gql, right)) == ["RATE_LIMITED"]


@pytest.mark.parametrize("phone", ["12345", "+86 123 4567 8901", "not a phone", "1" * 30])
async def test_bad_phone_numbers_are_invalid_input(wx_gql: GraphQLClient, phone: str) -> None:
    payload = await send(wx_gql, phone)
    assert payload["errors"] == [
        {"code": "INVALID_INPUT", "field": "phone", "retryAfterSeconds": None}
    ]


async def test_provider_failure_keeps_no_code(wx_app: Starlette, fake_sms: FakeTencentSms) -> None:
    fake_sms.fail_with = "LimitExceeded.PhoneNumberDailyLimit"
    async with running_app(wx_app) as http:
        payload = await send(GraphQLClient(http))
        assert codes(payload) == ["SMS_UNAVAILABLE"]
        assert await sql(wx_app, "SELECT count(*) FROM sms_codes") == 0


async def test_console_provider_in_development(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="src.auth.sms"):
        assert (await send(gql))["sent"] is True
    (record,) = [r for r in caplog.records if "DEVELOPMENT SMS" in r.getMessage()]
    code = record.getMessage().rsplit(" ", 1)[-1]
    assert (await sms_login(gql, code))["errors"] == []
