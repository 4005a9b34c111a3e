"""MCP tools and prompts: the input schema is the truth. Descriptions name only arguments the
schema has (and every one of them), arguments are camelCase like the GraphQL API's and each is
described, and an argument the schema lacks is refused with a clear error."""

from __future__ import annotations

import re

import pytest
from mcp import Client

from src.mcp_server import build_mcp_server

NAMED = re.compile(r"`([^`]+)`")
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    # Argument checks happen before a tool runs: no services are needed to list or refuse.
    return build_mcp_server(lambda: None, sdl="type Query { health: String! }")  # type: ignore[arg-type, return-value]


async def test_tool_descriptions_agree_with_their_schemas(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == {
        "search_users",
        "get_profile",
        "suggest_profile_improvements",
        "send_whisper",
        "list_whispers",
    }
    for tool in tools:
        schema = tool.input_schema
        arguments = set(schema.get("properties", {}))
        assert schema.get("additionalProperties") is False, tool.name
        named = set(NAMED.findall(tool.description or ""))
        for prop in schema.get("properties", {}).values():
            assert prop.get("description"), (tool.name, prop)
            named |= set(NAMED.findall(prop["description"]))
        assert named <= arguments, (tool.name, named - arguments)
        assert arguments <= set(NAMED.findall(tool.description or "")), (
            tool.name,
            arguments - set(NAMED.findall(tool.description or "")),
        )
        assert all(CAMEL.match(name) for name in arguments), (tool.name, arguments)


async def test_prompt_descriptions_agree_with_their_arguments(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        prompts = (await client.list_prompts()).prompts
    for prompt in prompts:
        arguments = {a.name for a in prompt.arguments or ()}
        assert set(NAMED.findall(prompt.description or "")) == arguments, prompt.name
        assert all(
            CAMEL.match(name) and a.description
            for name, a in ((a.name, a) for a in prompt.arguments or ())
        ), prompt.name


@pytest.mark.parametrize(
    ("tool", "arguments", "unknown"),
    [
        ("get_profile", {"user_id": "x"}, "user_id"),
        ("send_whisper", {"content": "hi", "recipient_id": "x"}, "recipient_id"),
        ("list_whispers", {"unread_only": True, "limit": 5}, "limit, unread_only"),
        ("suggest_profile_improvements", {"verbose": True}, "verbose"),
    ],
)
async def test_unknown_arguments_are_refused(server, tool, arguments, unknown) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"INVALID_INPUT: unknown argument(s) {unknown}; {tool} takes: " in text, text
