"""Access tokens refuse every forgery and misuse (SECURITY.md 14-15, RFC 8725)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from src.auth.tokens import InvalidToken, TokenService, derive_key
from src.config import Settings

SECRET = "s" * 40
USER, SESSION = uuid.uuid4(), uuid.uuid4()


def service(**overrides: object) -> TokenService:
    return TokenService(Settings(_env_file=None, secret_key=SECRET, **overrides))  # type: ignore[arg-type]


def forge(
    claims: dict[str, object],
    *,
    key: bytes | None = None,
    alg: str = "HS256",
    kid: str | None = None,
) -> str:
    key = key or derive_key(SECRET, "jwt")
    headers = {"kid": kid or service()._signing[0]}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def good_claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "qiaoqiao",
        "aud": "qiaoqiao-api",
        "sub": str(USER),
        "sid": str(SESSION),
        "iat": now,
        "exp": now + 600,
        "jti": "j",
        "typ": "access",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_issued_token_verifies_and_lives_at_most_15_minutes() -> None:
    tokens = service()
    issued = tokens.issue_access(USER, SESSION)
    claims = tokens.verify_access(issued.token)
    assert (claims.user_id, claims.session_id) == (USER, SESSION)
    assert issued.expires_in <= 900
    with pytest.raises(ValueError, match="900"):
        Settings(_env_file=None, access_token_ttl_s=901)


def test_alg_none_is_refused() -> None:
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "kid": service()._signing[0]}).encode()
    )
    body = base64.urlsafe_b64encode(json.dumps(good_claims()).encode())
    token = f"{header.decode().rstrip('=')}.{body.decode().rstrip('=')}."
    with pytest.raises(InvalidToken):
        service().verify_access(token)


def test_unexpected_algorithm_is_refused() -> None:
    with pytest.raises(InvalidToken):
        service().verify_access(
            forge(good_claims(), alg="HS512", key=derive_key(SECRET, "jwt") * 2)
        )


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(InvalidToken):
        service().verify_access(forge(good_claims(), kid="not-our-key"))


def test_foreign_key_is_refused() -> None:
    with pytest.raises(InvalidToken):
        service().verify_access(forge(good_claims(), key=derive_key("other" * 10, "jwt")))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"exp": None},
        {"iat": None},
        {"sub": None},
        {"sid": None},
        {"jti": None},
        {"typ": "refresh"},
        {"exp": int(time.time()) - 60},
        {"exp": int(time.time()) + 3600},  # lives longer than 15 minutes
        {"sub": "not-a-uuid"},
    ],
)
def test_bad_claims_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        service().verify_access(forge(good_claims(**changes)))


def test_refresh_token_is_not_an_access_token() -> None:
    with pytest.raises(InvalidToken):
        service().verify_access("rt_" + "a" * 43)


def test_rotated_keys_verify_during_the_overlap_window() -> None:
    old = service()
    token = old.issue_access(USER, SESSION).token
    rotated = TokenService(
        Settings(_env_file=None, secret_key="n" * 40, previous_secret_keys=[SECRET])
    )
    assert rotated.verify_access(token).user_id == USER
    after_overlap = TokenService(Settings(_env_file=None, secret_key="n" * 40))
    with pytest.raises(InvalidToken):
        after_overlap.verify_access(token)
    # New tokens are signed with the new key only.
    assert (
        jwt.get_unverified_header(rotated.issue_access(USER, SESSION).token)["kid"]
        != (jwt.get_unverified_header(token)["kid"])
    )
