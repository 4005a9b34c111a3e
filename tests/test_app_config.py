"""`appConfig`: what the mini app's first screen needs, without a login, exactly as configured."""

from __future__ import annotations

from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import REGISTER, GraphQLClient, dev_login, running_app

APP_CONFIG = """{ appConfig {
  privacyPolicyVersion privacyPolicyUrl minAge proPriceFen proDays canPurchase
  plans { plan dailyLimits { kind limit } }
} }"""


async def test_defaults_without_login(gql: GraphQLClient) -> None:
    response = await gql(APP_CONFIG)
    assert response.errors == []
    assert response.data == {
        "appConfig": {
            "privacyPolicyVersion": "2026-11",
            "privacyPolicyUrl": None,
            "minAge": 18,
            "proPriceFen": 1000,
            "proDays": 30,
            "canPurchase": True,  # development buys PRO without a merchant account
            "plans": [
                {
                    "plan": "BASIC",
                    "dailyLimits": [
                        {"kind": "WHISPER", "limit": 10},
                        {"kind": "SWIPE", "limit": 50},
                        {"kind": "AI_REQUEST", "limit": 20},
                        {"kind": "DISCOVERY", "limit": 30},
                    ],
                },
                {
                    "plan": "PRO",
                    "dailyLimits": [
                        {"kind": "WHISPER", "limit": 100},
                        {"kind": "SWIPE", "limit": 500},
                        {"kind": "AI_REQUEST", "limit": 200},
                        {"kind": "DISCOVERY", "limit": 300},
                    ],
                },
            ],
        }
    }


async def test_ios_cannot_purchase(gql: GraphQLClient) -> None:
    for platform, expected in (
        ("ios", False),
        ("iOS", False),
        ("android", True),
        ("devtools", True),
    ):
        response = await gql("{ appConfig { canPurchase } }", headers={"x-wx-platform": platform})
        assert response.data == {"appConfig": {"canPurchase": expected}}, platform


async def test_follows_the_configuration(settings: Settings) -> None:
    limits = {
        "BASIC": {"WHISPER": 3, "SWIPE": 4, "AI_REQUEST": 5, "DISCOVERY": 6},
        "PRO": {"WHISPER": 30, "SWIPE": 40, "AI_REQUEST": 50, "DISCOVERY": 60},
    }
    app: Starlette = create_app(
        settings.model_copy(
            update={
                "privacy_policy_version": "2027-02",
                "privacy_policy_url": "https://example.com/privacy",
                "min_age": 16,
                "pro_price_fen": 1500,
                "pro_days": 31,
                "quota_limits": limits,
            }
        )
    )
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        config = (await gql(APP_CONFIG)).data["appConfig"]
        assert config["privacyPolicyVersion"] == "2027-02"
        assert config["privacyPolicyUrl"] == "https://example.com/privacy"
        assert (config["minAge"], config["proPriceFen"], config["proDays"]) == (16, 1500, 31)
        assert {
            p["plan"]: {q["kind"]: q["limit"] for q in p["dailyLimits"]} for p in config["plans"]
        } == limits
        # The version it names is the one register accepts.
        login = await dev_login(gql, "newcomer")
        data = {"acceptedPolicyVersion": config["privacyPolicyVersion"], "nickname": "N"}
        response = await gql(REGISTER, {"input": data}, token=login["accessToken"])
        assert response.data["register"]["errors"] == []
