"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored hashed).

RFC 8725: the algorithm is pinned, `kid` must name a key we hold, and `iss`, `aud`, `sub`,
`iat`, `exp`, `jti` and our `typ` claim are all required. Keys are derived from SECRET_KEY;
PREVIOUS_SECRET_KEYS keep verifying tokens signed before a rotation until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from src.config import Settings

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
VERIFIED_CACHE_SIZE = 10_000


def derive_key(secret: str, purpose: str) -> bytes:
    """A separate 32-byte key per purpose, so one secret never signs two kinds of thing."""
    return hmac.new(secret.encode(), f"qiaoqiao:{purpose}".encode(), hashlib.sha256).digest()


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_in: int


class TokenService:
    def __init__(self, settings: Settings):
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_s
        current = derive_key(settings.secret_key.get_secret_value(), "jwt")
        self._signing = (_kid(current), current)
        self._verifying = {_kid(current): current}
        for old in settings.previous_secret_keys:
            key = derive_key(old.get_secret_value(), "jwt")
            self._verifying.setdefault(_kid(key), key)
        self._verified: dict[str, AccessClaims] = {}

    def issue_access(self, user_id: uuid.UUID, session_id: uuid.UUID) -> IssuedAccessToken:
        now = int(time.time())
        kid, key = self._signing
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
        }
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedAccessToken(token=token, expires_in=self.ttl)

    def verify_access(self, token: str) -> AccessClaims:
        """Raises InvalidToken for anything but a valid, unexpired access token of ours.

        Verified tokens are remembered until they expire: a client sends the same token on
        every request, and checking the signature again each time costs more than the query.
        """
        cached = self._verified.get(token)
        if cached is not None and cached.expires_at > time.time():
            return cached
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._verifying.get(str(header.get("kid")))
            if key is None or header.get("alg") != ALGORITHM:
                raise InvalidToken("unknown key or algorithm")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["iss", "aud", "sub", "iat", "exp", "jti", "typ", "sid"]},
                leeway=5,
            )
            if claims["typ"] != ACCESS_TYPE:
                raise InvalidToken("not an access token")
            if claims["exp"] - claims["iat"] > self.ttl + 5:
                raise InvalidToken("lifetime longer than allowed")
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                expires_at=int(claims["exp"]),
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from None


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the hash we store of it."""
    token = "rt_" + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
