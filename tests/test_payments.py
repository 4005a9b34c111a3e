"""Buying PRO with WeChat Pay v3 JSAPI end to end against a fake WeChat Pay that checks our
signatures and signs its own (SECURITY.md 22, 25)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from src.resolvers.orders import settle_pending_orders
from tests.fakes.wechat import FakeWechat
from tests.fakes.wechat_pay import FakeWechatPay
from tests.helpers import LOGIN, GraphQLClient, dev_login, running_app, sql

ORDER = """mutation ($key: String) {
  createProOrder(idempotencyKey: $key) { orderId paymentParams errors { code message } }
}"""
PLAN = "{ me { membership { plan validUntil canPurchase } quotas { kind limit } } }"


@pytest.fixture
def pay_app(pay_settings: Settings) -> Starlette:
    return create_app(pay_settings)


async def wechat_user(gql: GraphQLClient, fake_wechat: FakeWechat, name: str) -> str:
    fake_wechat.add_login(f"code-{name}", f"openid-{name}")
    return (await gql(LOGIN, {"code": f"code-{name}"})).data["wechatLogin"]["accessToken"]


async def order(gql: GraphQLClient, token: str, key: str | None = None, **headers: str) -> dict:
    response = await gql(ORDER, {"key": key}, token=token, headers=headers)
    assert response.errors == [], response.errors
    return response.data["createProOrder"]


async def out_trade_no(app: Starlette, order_id: str) -> str:
    return await sql(app, "SELECT out_trade_no FROM payment_orders WHERE id = :i", i=order_id)


async def notify(http, fake_pay: FakeWechatPay, trade_no: str, **overrides: object) -> int:  # type: ignore[no-untyped-def]
    headers, body = fake_pay.notification(trade_no, **overrides)
    return (await http.post("/pay/notify", content=body, headers=headers)).status_code


async def test_order_notify_and_pro_end_to_end(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "payer")
        made = await order(gql, token)
        assert made["errors"] == []
        params = json.loads(made["paymentParams"])
        assert fake_pay.rejected == []
        # The wx.requestPayment arguments are signed by the merchant key.
        message = (
            f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
        )
        fake_pay.merchant_key.public_key().verify(
            base64.b64decode(params["paySign"]),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        trade_no = await out_trade_no(pay_app, made["orderId"])
        assert params["package"] == f"prepay_id={fake_pay.orders[trade_no]['prepay_id']}"
        assert fake_pay.orders[trade_no]["amount"] == {"total": 1000, "currency": "CNY"}
        assert fake_pay.orders[trade_no]["payer"] == {"openid": "openid-payer"}

        before = (await gql(PLAN, token=token)).data["me"]
        fake_pay.pay(trade_no)
        assert await notify(http, fake_pay, trade_no) == 204
        after = (await gql(PLAN, token=token)).data["me"]
        # A replay of the same notification changes nothing.
        assert await notify(http, fake_pay, trade_no) == 204
        again = (await gql(PLAN, token=token)).data["me"]
    assert before["membership"]["plan"] == "BASIC"
    assert after["membership"]["plan"] == "PRO"
    assert {q["kind"]: q["limit"] for q in after["quotas"]}["WHISPER"] == 100
    assert again["membership"]["validUntil"] == after["membership"]["validUntil"]


async def test_forged_wrong_or_stale_notifications_change_nothing(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "victim")
        trade_no = await out_trade_no(pay_app, (await order(gql, token))["orderId"])
        fake_pay.pay(trade_no)

        headers, body = fake_pay.notification(trade_no)
        tampered = body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS "')
        bad_signature = await http.post("/pay/notify", content=tampered, headers=headers)
        wrong_amount = await notify(
            http, fake_pay, trade_no, amount={"total": 1, "currency": "CNY"}
        )
        wrong_merchant = await notify(http, fake_pay, trade_no, mchid="someone-else")
        stale_headers, stale_body = fake_pay.notification(trade_no)
        stale_headers.update(fake_pay.signed_headers(stale_body, timestamp=1_000_000_000))
        stale = await http.post("/pay/notify", content=stale_body, headers=stale_headers)
        unsigned = await http.post("/pay/notify", content=body)
        statuses = [
            bad_signature.status_code,
            wrong_amount,
            wrong_merchant,
            stale.status_code,
            unsigned.status_code,
        ]
        plan = (await gql(PLAN, token=token)).data["me"]["membership"]["plan"]
        memberships = await sql(pay_app, "SELECT count(*) FROM memberships")
    assert statuses == [400] * 5
    assert bad_signature.json() == {"code": "FAIL", "message": "invalid notification"}
    assert (plan, memberships) == ("BASIC", 0)


async def test_concurrent_duplicate_notifications_extend_once(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "twice")
        trade_no = await out_trade_no(pay_app, (await order(gql, token))["orderId"])
        fake_pay.pay(trade_no)
        codes = await asyncio.gather(*(notify(http, fake_pay, trade_no) for _ in range(10)))
        memberships = await sql(pay_app, "SELECT count(*) FROM memberships")
    assert codes == [204] * 10
    assert memberships == 1


async def test_an_order_without_notification_is_settled_by_query(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "patient")
        unpaid = await out_trade_no(pay_app, (await order(gql, token))["orderId"])
        paid = await out_trade_no(pay_app, (await order(gql, token))["orderId"])
        fake_pay.pay(paid)
        settled = await settle_pending_orders(pay_app.state.services, older_than_s=0)
        statuses = {
            trade: await sql(
                pay_app, "SELECT status FROM payment_orders WHERE out_trade_no = :t", t=trade
            )
            for trade in (unpaid, paid)
        }
        plan = (await gql(PLAN, token=token)).data["me"]["membership"]["plan"]
    assert settled == 1
    assert statuses == {unpaid: "CREATED", paid: "PAID"}
    assert plan == "PRO"


async def test_same_idempotency_key_twenty_times_at_once(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "eager")
        answers = await asyncio.gather(*(order(gql, token, key="k-1") for _ in range(20)))
        rows = await sql(pay_app, "SELECT count(*) FROM payment_orders")
        other = await order(gql, token, key="k-2")
    assert rows == 1
    assert all(a == answers[0] for a in answers)
    assert answers[0]["errors"] == [] and answers[0]["orderId"]
    assert other["orderId"] != answers[0]["orderId"]


async def test_ios_cannot_purchase(
    pay_app: Starlette, fake_wechat: FakeWechat, fake_pay: FakeWechatPay
) -> None:
    async with running_app(pay_app) as http:
        gql = GraphQLClient(http)
        token = await wechat_user(gql, fake_wechat, "iphone")
        ios = (await gql(PLAN, token=token, headers={"x-wx-platform": "ios"})).data["me"]
        android = (await gql(PLAN, token=token, headers={"x-wx-platform": "android"})).data["me"]
        refused = await order(gql, token, **{"x-wx-platform": "iOS"})
    assert ios["membership"]["canPurchase"] is False
    assert android["membership"]["canPurchase"] is True
    assert [e["code"] for e in refused["errors"]] == ["PAYMENT_FAILED"]
    assert fake_pay.orders == {}


async def test_development_purchase_without_merchant_credentials(gql: GraphQLClient) -> None:
    token = (await dev_login(gql, "tester"))["accessToken"]
    made = await order(gql, token)
    assert json.loads(made["paymentParams"]) == {"development": True, "paid": True}
    me = (await gql(PLAN, token=token)).data["me"]
    assert me["membership"]["plan"] == "PRO"


async def test_production_has_no_development_purchase(settings: Settings) -> None:
    from tests.test_settings import PRODUCTION

    production = settings.model_copy(update={**PRODUCTION})
    assert not production.dev_purchase_enabled
