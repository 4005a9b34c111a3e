"""Profiles as others and their owner see them."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Gender as the user chose to state it.")
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    OTHER = "OTHER"
    UNDISCLOSED = "UNDISCLOSED"
