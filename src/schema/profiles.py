"""Profiles as others and their owner see them, and their updates."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import Integer, and_, cast, func, literal_column

from src.models import UserProfile, rules
from src.resolvers import profiles
from src.resolvers.calendar import local_day
from src.resolvers.readplan import One, Scalar, Source
from src.resolvers.readplan.model import column, list_column
from src.schema.context import Info
from src.schema.institutions import Institution


@strawberry.enum(description="Gender as the user chose to state it.")
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    OTHER = "OTHER"
    UNDISCLOSED = "UNDISCLOSED"


@strawberry.type(description="A public profile. Others see an age, never the birth date.")
class Profile:
    row: strawberry.Private[UserProfile]

    @strawberry.field(description="1 to 30 characters.")
    def nickname(self) -> str:
        return self.row.nickname

    @strawberry.field(description="An https:// image URL.")
    def avatar_url(self) -> str | None:
        return self.row.avatar_url

    @strawberry.field(description="As the user chose to state it.")
    def gender(self) -> Gender:
        return Gender(self.row.gender)

    @strawberry.field(description="Age in whole years (Asia/Shanghai calendar), if known.")
    def age(self, info: Info) -> int | None:
        born = self.row.birth_date
        return profiles.age_on(born, local_day(info.context.services.clock())) if born else None

    @strawberry.field(description="City, as the user wrote it.")
    def city(self) -> str | None:
        return self.row.city

    @strawberry.field(description="At most 500 characters.")
    def bio(self) -> str | None:
        return self.row.bio

    @strawberry.field(description="Up to 20 interest tags.")
    def interests(self) -> list[str]:
        return list(self.row.interests)

    @strawberry.field(description="What the user is looking for.")
    def looking_for(self) -> str | None:
        return self.row.looking_for

    @strawberry.field(description="School or employer.")
    async def institution(self, info: Info) -> Institution | None:
        if self.row.institution_id is None:
            return None
        claims = info.context.claims
        viewer = claims.user_id if claims else None
        row = await info.context.loaders.shown_institution_by_viewer_and_id.load(
            (viewer, self.row.institution_id)
        )
        return Institution.of(row) if row else None

    @strawberry.field(description="False when the user hides from discovery and others' views.")
    def discoverable(self) -> bool:
        return self.row.visibility == "discoverable"


# Where a Profile's fields live, for the compiled reads (src/resolvers/readplan). Ages are on
# the Asia/Shanghai date of the one clock (bound as `today`), as profiles.age_on counts them.
PROFILE_SOURCE = Source(
    table=UserProfile.__table__,  # type: ignore[attr-defined]  # SQLModel sets it
    fields={
        "nickname": column("nickname"),
        "avatarUrl": column("avatar_url"),
        "gender": column("gender"),
        "age": Scalar(
            lambda row, scope: cast(
                func.date_part(literal_column("'year'"), func.age(scope.today, row.c.birth_date)),
                Integer,
            )
        ),
        "city": column("city"),
        "bio": column("bio"),
        "interests": list_column("interests"),
        "lookingFor": column("looking_for"),
        "institution": One(
            "Institution",
            lambda profile, inst, scope: and_(
                inst.c.id == profile.c.institution_id,
                rules.institution_shown(scope.viewer, institution=inst),
            ),
        ),
        "discoverable": Scalar(lambda row, _: row.c.visibility == "discoverable"),
    },
)


@strawberry.input(
    description="Profile changes: omitted fields stay as they are; null clears a field."
)
class ProfileInput:
    nickname: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    gender: Gender | None = strawberry.UNSET
    birth_date: str | None = strawberry.field(
        default=strawberry.UNSET, description="YYYY-MM-DD; only you see it."
    )
    city: str | None = strawberry.UNSET
    bio: str | None = strawberry.field(default=strawberry.UNSET, description="≤ 500 characters.")
    interests: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="≤ 20 tags of ≤ 20 characters."
    )
    looking_for: str | None = strawberry.UNSET
    institution_id: strawberry.ID | None = strawberry.UNSET
    discoverable: bool | None = strawberry.UNSET

    def changes(self) -> dict[str, Any]:
        given = {
            name: value
            for name, value in vars(self).items()
            if value is not strawberry.UNSET and not name.startswith("_")
        }
        if "gender" in given and given["gender"] is not None:
            given["gender"] = given["gender"].value
        if "discoverable" in given:
            given["visibility"] = given.pop("discoverable")
        return given
