"""Profile suggestions: concrete, field-by-field improvements, from rules over the profile and
what other people list, and (when a model is configured) from the model, validated here."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from src.ai.language import language_of
from src.ai.texts import SUGGESTIONS as TEXTS

SHORT_BIO = 40  # characters: below this, a bio gives the search little to match
FEW_INTERESTS = 3
MAX_SUGGESTION = 300
MAX_REASON = 200
MAX_MODEL_SUGGESTIONS = 5

# Profile fields a suggestion may name (GraphQL spelling), besides the viewer's own projects.
KNOWN_FIELDS = frozenset(
    {
        "nickname",
        "avatarUrl",
        "gender",
        "birthDate",
        "city",
        "bio",
        "interests",
        "lookingFor",
        "institutionId",
        "projects",
    }
)


@dataclass(frozen=True)
class ProjectFacts:
    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True)
class ProfileFacts:
    """What the workflows know of a profile: the owner's view, minus contact details."""

    nickname: str
    avatar_url: str | None = None
    gender: str = "UNDISCLOSED"
    age: int | None = None
    has_birth_date: bool = False
    city: str | None = None
    bio: str | None = None
    interests: list[str] = field(default_factory=list)
    looking_for: str | None = None
    institution: str | None = None
    projects: list[ProjectFacts] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["projects"] = [asdict(p) for p in self.projects]
        return data


@dataclass(frozen=True)
class Suggestion:
    field: str
    suggestion: str
    reason: str
    model: str | None = None  # None: from the rules


def project_field(project_id: str) -> str:
    return f"projects[{project_id}].description"


def profile_language(facts: ProfileFacts) -> str:
    """The language the profile is written in ("zh" or "en"), for advice in that language."""
    return language_of(
        facts.nickname, facts.bio, " ".join(facts.interests), facts.looking_for, facts.city
    )


def from_rules(
    facts: ProfileFacts, popular: list[tuple[str, int]], lang: str | None = None
) -> list[Suggestion]:
    """Rule-based suggestions, most useful first, in `lang` (default: the profile's language).
    `popular` is (interest, how many other people list it), most common first, from the
    registered users."""
    t = TEXTS[lang or profile_language(facts)]
    out: list[Suggestion] = []
    bio = (facts.bio or "").strip()
    if not bio:
        out.append(Suggestion("bio", t["bio_empty"], t["bio_empty_why"]))
    elif len(bio) < SHORT_BIO:
        out.append(Suggestion("bio", t["bio_short"], t["bio_short_why"].format(n=len(bio))))
    out.extend(_interest_suggestions(facts.interests, popular, t))
    for missing, name, key in (
        (not facts.city, "city", "city"),
        (not facts.looking_for, "lookingFor", "looking_for"),
        (not facts.avatar_url, "avatarUrl", "avatar"),
        (not facts.has_birth_date, "birthDate", "birth"),
        (not facts.institution, "institutionId", "institution"),
    ):
        if missing:
            out.append(Suggestion(name, t[key], t[key + "_why"]))
    for project in facts.projects:
        if not (project.description or "").strip():
            out.append(
                Suggestion(
                    project_field(project.id),
                    t["project"].format(title=project.title),
                    t["project_why"],
                )
            )
    if not facts.projects:
        out.append(Suggestion("projects", t["projects"], t["projects_why"]))
    return out


def _interest_suggestions(
    mine: list[str], popular: list[tuple[str, int]], t: dict[str, str]
) -> list[Suggestion]:
    have = {tag.casefold() for tag in mine}
    candidates = [(tag, n) for tag, n in popular if tag.casefold() not in have][:3]
    listed = t["sep"].join(t["listed"].format(tag=tag, n=n) for tag, n in candidates)
    out: list[Suggestion] = []
    if len(mine) < FEW_INTERESTS:
        suggestion = t["few"].format(k=FEW_INTERESTS)
        suggestion += t["few_popular"].format(listed=listed) if candidates else t["few_end"]
        reason = t["none_why"] if not mine else t["few_why"].format(n=len(mine))
        out.append(Suggestion("interests", suggestion, reason))
    elif candidates:
        out.append(Suggestion("interests", t["more"].format(listed=listed), t["more_why"]))
    counts = {tag.casefold(): n for tag, n in popular}
    lonely = [tag for tag in mine if tag.casefold() not in counts]
    if mine and len(lonely) == len(mine) and candidates:
        tags = t["sep"].join(f"“{tag}”" for tag in lonely[:3])
        out.append(Suggestion("interests", t["lonely"].format(tags=tags), t["lonely_why"]))
    return out


def allowed_fields(facts: ProfileFacts) -> frozenset[str]:
    return KNOWN_FIELDS | {project_field(p.id) for p in facts.projects}


def from_model(content: str | None, facts: ProfileFacts, model: str) -> list[Suggestion]:
    """The model's suggestions that pass validation: a known field, bounded lengths, at most
    five. Anything malformed is dropped, never shown."""
    data = _json_object(content or "")
    items = data.get("suggestions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    allowed = allowed_fields(facts)
    out: list[Suggestion] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name, text, reason = item.get("field"), item.get("suggestion"), item.get("reason")
        if not (isinstance(name, str) and isinstance(text, str) and isinstance(reason, str)):
            continue
        text, reason = " ".join(text.split()), " ".join(reason.split())
        if name not in allowed or not 1 <= len(text) <= MAX_SUGGESTION:
            continue
        if not 1 <= len(reason) <= MAX_REASON:
            continue
        out.append(Suggestion(name, text, reason, model=model))
        if len(out) == MAX_MODEL_SUGGESTIONS:
            break
    return out


def _json_object(text: str) -> Any:
    # Models often wrap JSON in a ``` fence even when asked not to.
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    try:
        return orjson.loads(fenced.group(1) if fenced else text)
    except orjson.JSONDecodeError:
        return None


def merge(rules: list[Suggestion], model: list[Suggestion]) -> list[Suggestion]:
    seen = {(s.field, s.suggestion.casefold()) for s in rules}
    return rules + [s for s in model if (s.field, s.suggestion.casefold()) not in seen]
