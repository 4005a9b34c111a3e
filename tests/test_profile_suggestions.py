"""profileSuggestions: field-by-field rules from the profile and from what other people list,
model-written suggestions validated, the fallback when the model fails, quota."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from starlette.applications import Starlette

from src.ai.suggestions import ProfileFacts, from_model
from src.app import create_app
from src.config import Settings
from tests.ai_helpers import SESSIONS, SUGGESTIONS, UPDATE, populate
from tests.fakes.openai import FakeOpenAI
from tests.helpers import GraphQLClient, running_app

ADD_PROJECT = """mutation ($i: ProjectInput!) { addProject(input: $i) { project { id } errors {
  code } } }"""

World = tuple[Starlette, GraphQLClient, dict[str, str]]


async def _world(settings: Settings) -> AsyncIterator[World]:
    app = create_app(settings)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        yield app, gql, tokens


@pytest.fixture
async def offline(settings: Settings) -> AsyncIterator[World]:
    async for w in _world(settings):
        yield w


@pytest.fixture
async def world(llm_settings: Settings) -> AsyncIterator[World]:
    async for w in _world(llm_settings):
        yield w


async def suggestions(gql: GraphQLClient, token: str) -> list[dict]:
    response = await gql(SUGGESTIONS, token=token)
    assert response.errors == [], response.errors
    return response.data["profileSuggestions"]


async def test_rules_name_each_field_to_improve(offline: World) -> None:
    _, gql, tokens = offline
    token = tokens["viewer"]
    await gql(UPDATE, {"i": {"bio": "Hi!", "interests": ["knitting"]}}, token=token)
    project = await gql(ADD_PROJECT, {"i": {"title": "Tea map"}}, token=token)
    project_id = project.data["addProject"]["project"]["id"]

    found = await suggestions(gql, token)

    by_field: dict[str, list[dict]] = {}
    for s in found:
        by_field.setdefault(s["field"], []).append(s)
    assert all(s["model"] is None for s in found)
    assert "At 3 characters" in by_field["bio"][0]["reason"]
    # From real data: "hiking" is listed by 3 others (any case), 摄影 by 2; knitting by nobody.
    interests = " ".join(s["suggestion"] for s in by_field["interests"])
    assert "hiking (3 people)" in interests and "摄影 (2 people)" in interests
    assert "product" not in interests  # one person only: it would not match more people
    assert any("“knitting”" in s["suggestion"] for s in by_field["interests"])
    assert {"city", "lookingFor", "avatarUrl", "birthDate", "institutionId"} <= set(by_field)
    assert f"projects[{project_id}].description" in by_field
    assert "Tea map" in by_field[f"projects[{project_id}].description"][0]["suggestion"]
    assert "projects" not in by_field  # there is one

    await gql(
        UPDATE,
        {
            "i": {
                "bio": "x" * 80,
                "city": "上海",
                "lookingFor": "friends",
                "birthDate": "1990-01-01",
            }
        },
        token=token,
    )
    fields = {s["field"] for s in await suggestions(gql, token)}
    assert not fields & {"bio", "city", "lookingFor", "birthDate"}

    sessions = (await gql(SESSIONS, token=token)).data["aiSessions"]
    kinds = [(e["node"]["kind"], e["node"]["model"]) for e in sessions["edges"]]
    assert kinds == [("suggestions", None), ("suggestions", None)]


async def test_the_model_adds_validated_suggestions(world: World, fake_llm: FakeOpenAI) -> None:
    _, gql, tokens = world
    fake_llm.reply(
        "```json\n"
        + orjson.dumps(
            {
                "suggestions": [
                    {
                        "field": "bio",
                        "suggestion": "Mention the trails you like best.",
                        "reason": "Specific places start conversations.",
                    },
                    {"field": "password", "suggestion": "Share it", "reason": "no"},
                    {"field": "city", "suggestion": "x" * 301, "reason": "too long"},
                    {"field": "interests", "suggestion": "Add trail running"},
                    "not an object",
                ]
            }
        ).decode()
        + "\n```",
        prompt_tokens=120,
        completion_tokens=60,
    )
    found = await suggestions(gql, tokens["pm_hiker"])
    written = [s for s in found if s["model"]]
    assert written == [
        {
            "field": "bio",
            "suggestion": "Mention the trails you like best.",
            "reason": "Specific places start conversations.",
            "model": "fake-model-1",
        }
    ]
    assert found.index(written[0]) == len(found) - 1  # after the rules' own
    sent = fake_llm.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    profile = orjson.loads(sent["messages"][1]["content"])["profile"]
    assert profile["nickname"] == "pm_hiker" and "phone" not in profile
    sessions = (await gql(SESSIONS, token=tokens["pm_hiker"])).data["aiSessions"]
    node = sessions["edges"][0]["node"]
    assert (node["kind"], node["model"], node["promptTokens"], node["completionTokens"]) == (
        "suggestions",
        "fake-model-1",
        120,
        60,
    )


async def test_a_failing_model_leaves_the_rules(world: World, fake_llm: FakeOpenAI) -> None:
    _, gql, tokens = world
    fake_llm.hang()
    found = await suggestions(gql, tokens["viewer"])
    assert found and all(s["model"] is None for s in found)
    sessions = (await gql(SESSIONS, token=tokens["viewer"])).data["aiSessions"]
    assert sessions["edges"][0]["node"]["model"] is None


async def test_quota_exhaustion(llm_settings: Settings, fake_llm: FakeOpenAI) -> None:
    limits = {"BASIC": {"AI_REQUEST": 1}, "PRO": {"AI_REQUEST": 1}}
    app = create_app(llm_settings.model_copy(update={"quota_limits": limits}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        token = (await populate(gql))["viewer"]
        await suggestions(gql, token)
        response = await gql(SUGGESTIONS, token=token)
        assert response.error_codes == ["QUOTA_EXCEEDED"]
        assert response.data is None
        assert len(fake_llm.requests) == 1


def test_model_output_is_bounded_to_known_fields_and_five_items() -> None:
    facts = ProfileFacts(nickname="a")
    many = {
        "suggestions": [
            {"field": "bio", "suggestion": f"idea {i}", "reason": "because"} for i in range(9)
        ]
    }
    assert len(from_model(orjson.dumps(many).decode(), facts, "m")) == 5
    assert from_model("not json", facts, "m") == []
    assert from_model('{"suggestions": {"field": "bio"}}', facts, "m") == []
    foreign = {
        "suggestions": [
            {"field": "projects[123].description", "suggestion": "s", "reason": "r"},
            {"field": "bio", "suggestion": "s", "reason": "r" * 201},
        ]
    }
    assert from_model(orjson.dumps(foreign).decode(), facts, "m") == []


async def test_rules_speak_the_language_of_the_profile(offline: World) -> None:
    _, gql, tokens = offline
    token = tokens["viewer"]
    await gql(UPDATE, {"i": {"bio": "前端工程师", "interests": ["编织"]}}, token=token)
    await gql(ADD_PROJECT, {"i": {"title": "茶馆地图"}}, token=token)

    by_field = {s["field"]: s for s in await suggestions(gql, token)}

    assert by_field["bio"]["suggestion"] == "再写一两句你的工作、爱好或最近在做的项目。"
    assert by_field["bio"]["reason"] == "简介只有 5 个字，搜索能匹配到的内容很少。"
    assert by_field["city"]["suggestion"] == "填上你所在的城市。"
    project = next(s for f, s in by_field.items() if f.startswith("projects["))
    assert project["suggestion"].startswith("介绍一下「茶馆地图」")
    interests = [
        s["suggestion"] for s in await suggestions(gql, token) if s["field"] == "interests"
    ]
    # Interests other people list, with Chinese punctuation: 摄影（2 人）、hiking（2 人）…
    assert interests[0].startswith("至少填 3 个兴趣；这里热门的有：") and "（2 人）" in interests[0]
    assert interests[1] == "在“编织”旁边加一个更常见的写法或更宽泛的词。"
    # The same profile written in English gets English advice.
    await gql(UPDATE, {"i": {"bio": "Frontend engineer", "interests": ["knitting"]}}, token=token)
    await gql(UPDATE, {"i": {"lookingFor": "friends"}}, token=token)
    english = {s["field"]: s for s in await suggestions(gql, token)}
    assert english["bio"]["suggestion"].startswith("Add a sentence or two")
