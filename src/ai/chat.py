"""The chat workflow: a conversation turn with the model calling tools, or — without a model —
an answer composed from retrieval and rules that says so.

The caller supplies the tools (plain async callables) and the history, so this module knows
nothing about the database, permissions or quotas.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from src.ai import prompts, texts
from src.ai.language import language_of
from src.ai.llm import Completion, LLMClient, LLMError, Usage
from src.ai.suggestions import Suggestion

log = logging.getLogger(__name__)

MAX_TOOL_RESULT = 6000  # characters of JSON per tool result sent back to the model
KEEP_MESSAGES = 20  # user and assistant turns kept in a transcript


class ToolFailed(Exception):
    """A tool could not do what the model asked; the message goes back to the model."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any]], Awaitable[Any]]

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass
class Turn:
    reply: str
    model: str
    usage: Usage = field(default_factory=Usage)
    tools_used: list[str] = field(default_factory=list)


async def converse(
    llm: LLMClient,
    *,
    history: list[dict[str, Any]],
    message: str,
    tools: Sequence[Tool],
    max_rounds: int,
) -> Turn:
    """One turn: the model may call tools for up to `max_rounds` rounds, then must answer.

    Raises LLMError when the model cannot answer.
    """
    messages = prompts.chat_messages(history, message)
    by_name = {t.name: t for t in tools}
    specs = [t.spec() for t in tools]
    turn = Turn(reply="", model=llm.model)
    for _ in range(max_rounds):
        answer = await llm.complete(messages, tools=specs)
        _account(turn, answer)
        if not answer.tool_calls:
            return _finish(turn, answer)
        messages.append(answer.as_message())
        for call in answer.tool_calls:
            turn.tools_used.append(call.name)
            result = await _run_tool(by_name.get(call.name), call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    # Out of rounds: ask for an answer with what it has, offering no more tools.
    answer = await llm.complete(messages)
    _account(turn, answer)
    return _finish(turn, answer)


def _account(turn: Turn, answer: Completion) -> None:
    turn.usage = turn.usage + answer.usage
    turn.model = answer.model or turn.model


def _finish(turn: Turn, answer: Completion) -> Turn:
    reply = (answer.content or "").strip()
    if not reply:
        raise LLMError("the model gave an empty answer")
    turn.reply = reply
    return turn


async def _run_tool(tool: Tool | None, raw_arguments: str) -> str:
    if tool is None:
        return _result({"error": "no such tool"})
    try:
        arguments = orjson.loads(raw_arguments or "{}")
    except orjson.JSONDecodeError:
        return _result({"error": "arguments are not valid JSON"})
    if not isinstance(arguments, dict):
        return _result({"error": "arguments must be a JSON object"})
    try:
        return _result(await tool.run(arguments))
    except ToolFailed as exc:
        return _result({"error": str(exc)})


def _result(data: Any) -> str:
    text = orjson.dumps(data).decode()
    if len(text) > MAX_TOOL_RESULT:
        text = text[:MAX_TOOL_RESULT] + " …(cut)"
    return text


def remember(history: list[dict[str, Any]], message: str, reply: str) -> list[dict[str, Any]]:
    """The transcript after a turn: only the user's and the assistant's words (tool results
    about other people are not kept), the last KEEP_MESSAGES of them."""
    turns = [
        *history,
        {"role": "user", "content": message},
        {"role": "assistant", "content": reply},
    ]
    return turns[-KEEP_MESSAGES:]


def answer_without_model(
    query: str,
    people: list[dict[str, Any]],
    suggestions: list[Suggestion],
    *,
    reason: str,
    degraded: bool = False,
) -> str:
    """What chat says without a model, in the message's language: who the search found and
    what the rules suggest, plainly marked as not written by a model. `reason`: "no_model" or
    "model_down"; `degraded`: the search answered from PostgreSQL (the index is behind)."""
    t = texts.CHAT[language_of(query)]
    lines = [t["rules_only"].format(reason=t[reason])]
    if people:
        lines.append(t["matching"].format(query=query))
        for i, person in enumerate(people, 1):
            details = [str(person.get("city") or ""), t["sep"].join(person.get("interests") or [])]
            extra = t["dash"].join(d for d in details if d)
            lines.append(
                f"{i}. {person['nickname']}" + (t["open"] + extra + t["close"] if extra else "")
            )
    else:
        lines.append(t["nobody"].format(query=query))
    if degraded:
        lines.append(t["degraded"])
    if suggestions:
        lines.append(t["improve"])
        lines.extend(f"- {s.field}: {s.suggestion}" for s in suggestions)
    return "\n".join(lines)
