"""Profile suggestions: concrete, field-by-field improvements, from rules over the profile and
what other people list, and (when a model is configured) from the model, validated here."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

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


def from_rules(facts: ProfileFacts, popular: list[tuple[str, int]]) -> list[Suggestion]:
    """Rule-based suggestions, most useful first. `popular` is (interest, how many other
    people list it), most common first, from the registered users."""
    out: list[Suggestion] = []
    bio = (facts.bio or "").strip()
    if not bio:
        out.append(
            Suggestion(
                "bio",
                "Write two or three sentences: what you do, what you enjoy, whom you would like "
                "to meet.",
                "Your bio is empty, and discovery matches people by what their profile says.",
            )
        )
    elif len(bio) < SHORT_BIO:
        out.append(
            Suggestion(
                "bio",
                "Add a sentence or two about your work, your hobbies or a recent project.",
                f"At {len(bio)} characters your bio gives searches little to match.",
            )
        )
    out.extend(_interest_suggestions(facts.interests, popular))
    if not facts.city:
        out.append(
            Suggestion(
                "city",
                "Add the city you live in.",
                "Searches filtered by city cannot find you without one.",
            )
        )
    if not facts.looking_for:
        out.append(
            Suggestion(
                "lookingFor",
                "Say what you are looking for, e.g. a hiking partner, a co-founder or new friends.",
                "It tells people why they might whisper to you.",
            )
        )
    if not facts.avatar_url:
        out.append(
            Suggestion(
                "avatarUrl",
                "Add a profile photo.",
                "Your profile shows no picture, the first thing people see in a list.",
            )
        )
    if not facts.has_birth_date:
        out.append(
            Suggestion(
                "birthDate",
                "Add your birth date; others only ever see your age.",
                "Searches with an age range cannot find you without it.",
            )
        )
    if not facts.institution:
        out.append(
            Suggestion(
                "institutionId",
                "Pick your school or employer.",
                "Searches can filter by institution, and it is a common conversation starter.",
            )
        )
    for project in facts.projects:
        if not (project.description or "").strip():
            out.append(
                Suggestion(
                    project_field(project.id),
                    f"Describe “{project.title}”: what it is, your part in it, what came of it.",
                    "A project without a description says little about you.",
                )
            )
    if not facts.projects:
        out.append(
            Suggestion(
                "projects",
                "Add a project you are proud of: work, study or a side project.",
                "Projects show what you do, and discovery reads them too.",
            )
        )
    return out


def _interest_suggestions(mine: list[str], popular: list[tuple[str, int]]) -> list[Suggestion]:
    have = {tag.casefold() for tag in mine}
    candidates = [(tag, n) for tag, n in popular if tag.casefold() not in have][:3]
    listed = ", ".join(f"{tag} ({n} people)" for tag, n in candidates)
    out: list[Suggestion] = []
    if len(mine) < FEW_INTERESTS:
        suggestion = f"Add at least {FEW_INTERESTS} interests"
        suggestion += f"; popular ones here: {listed}." if candidates else "."
        reason = (
            "You list no interests, and they are what matches you with others."
            if not mine
            else f"You list only {len(mine)}; people are matched on shared interests."
        )
        out.append(Suggestion("interests", suggestion, reason))
    elif candidates:
        out.append(
            Suggestion(
                "interests",
                f"If they fit you, add interests many people share: {listed}.",
                "Shared interests would match you with more people.",
            )
        )
    counts = {tag.casefold(): n for tag, n in popular}
    lonely = [tag for tag in mine if tag.casefold() not in counts]
    if mine and len(lonely) == len(mine) and candidates:
        out.append(
            Suggestion(
                "interests",
                "Add a more common spelling or a broader word next to "
                + ", ".join(f"“{t}”" for t in lonely[:3])
                + ".",
                "Nobody else lists these yet, so they match no one.",
            )
        )
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
