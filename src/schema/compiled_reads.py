"""The catalog of compiled reads: every GraphQL type the compiled path covers, by name, with the
declaration that sits next to its Strawberry definition, and the compiled root fields. The
generic compiler (src/resolvers/readplan) gets it from here; a type or field missing here is
answered by Strawberry."""

from __future__ import annotations

from src.resolvers.readplan import Catalog
from src.schema.discovery import DISCOVER_ROOTS
from src.schema.institutions import INSTITUTION_ROOTS, INSTITUTION_SOURCE
from src.schema.matches import MATCH_ROOTS, MATCH_SOURCE
from src.schema.me import ME_ROOTS, ME_SOURCE
from src.schema.plans import MEMBERSHIP_SOURCE, QUOTA_STATUS_SOURCE
from src.schema.profiles import PROFILE_SOURCE
from src.schema.projects import PROJECT_SOURCE
from src.schema.users import GUARDED_USER_SOURCE, USER_ROOTS, USER_SOURCE
from src.schema.whispers import WHISPER_ROOTS, WHISPER_SOURCE

CATALOG = Catalog(
    types={
        "User": USER_SOURCE,
        "Profile": PROFILE_SOURCE,
        "Project": PROJECT_SOURCE,
        "Institution": INSTITUTION_SOURCE,
        "Me": ME_SOURCE,
        "Membership": MEMBERSHIP_SOURCE,
        "QuotaStatus": QUOTA_STATUS_SOURCE,
        "Match": MATCH_SOURCE,
        "Whisper": WHISPER_SOURCE,
        # not a GraphQL type: User where the viewer may not see them (see users.py)
        "User (guarded)": GUARDED_USER_SOURCE,
    },
    roots={
        **USER_ROOTS,
        **ME_ROOTS,
        **MATCH_ROOTS,
        **WHISPER_ROOTS,
        **INSTITUTION_ROOTS,
        **DISCOVER_ROOTS,
    },
)
