"""Prompts for the model and the MCP prompt templates, built from plain data."""

from __future__ import annotations

from typing import Any

import orjson

from src.ai.suggestions import KNOWN_FIELDS, ProfileFacts, Suggestion, allowed_fields

CHAT_SYSTEM = (
    "You are the assistant of qiaoqiao (悄悄), an app where people discover each other and send "
    "short, often anonymous messages called whispers. You help the user find people and improve "
    "their profile. Use the tools: search_users to find people (never invent anyone: mention "
    "only people a search returned, by nickname), get_my_profile to read the user's profile, "
    "suggest_profile_improvements for concrete profile advice. You cannot send whispers or see "
    "anyone's whispers. Reply in the user's language, briefly and plainly."
)


def _json(data: Any) -> str:
    return orjson.dumps(data).decode()


def chat_messages(history: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": CHAT_SYSTEM},
        *history,
        {"role": "user", "content": message},
    ]


def suggestion_messages(
    facts: ProfileFacts, rules: list[Suggestion], popular: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    fields = sorted(allowed_fields(facts))
    system = (
        "You review profiles on qiaoqiao, an app where people discover each other by what their "
        "profiles say. Suggest concrete improvements the rules below missed, in the language of "
        'the profile. Answer with JSON only: {"suggestions": [{"field": ..., "suggestion": ..., '
        '"reason": ...}]}, at most 5 items, each suggestion at most 300 characters and each '
        f"reason at most 200. field is one of: {', '.join(fields)}. Do not repeat the rules' "
        "suggestions; never ask for contact details."
    )
    user = {
        "profile": facts.as_dict(),
        "alreadySuggested": [{"field": s.field, "suggestion": s.suggestion} for s in rules],
        "popularInterests": [{"interest": t, "people": n} for t, n in popular],
    }
    return [{"role": "system", "content": system}, {"role": "user", "content": _json(user)}]


def icebreaker(viewer: ProfileFacts, other: dict[str, Any]) -> str:
    """An MCP prompt: draft a first whisper to someone, from both public profiles."""
    return (
        "Draft three short, friendly first whispers (at most 500 characters each) that I could "
        "send to the person below on qiaoqiao. Build on something we share or something specific "
        "in their profile; no pick-up lines, no requests for contact details. Write in the "
        "language of their profile.\n\n"
        f"Their public profile: {_json(other)}\n"
        f"My profile: {_json(_public(viewer))}"
    )


def profile_review(facts: ProfileFacts, rules: list[Suggestion]) -> str:
    """An MCP prompt: review my profile, starting from the rule-based findings."""
    return (
        "Review my qiaoqiao profile. For each field worth changing, say what to write and why; "
        f"fields: {', '.join(sorted(KNOWN_FIELDS))}. Start from these findings and add what "
        "they miss. Keep my voice and my language.\n\n"
        f"My profile: {_json(facts.as_dict())}\n"
        f"Findings: {_json([{'field': s.field, 'suggestion': s.suggestion} for s in rules])}"
    )


def _public(facts: ProfileFacts) -> dict[str, Any]:
    data = facts.as_dict()
    data.pop("has_birth_date", None)
    return data
