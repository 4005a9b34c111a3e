"""Short-lived signed links to proof images: GET /proofs/{key}?exp=…&sig=…

The signature is an HMAC over the key and the expiry with a key derived from SECRET_KEY for
this purpose only, so a link works for exactly one object until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

from src.auth.tokens import derive_key
from src.config import Settings
from src.storage.base import InvalidKey, check_key


class ProofLinks:
    def __init__(self, settings: Settings):
        self._key = derive_key(settings.secret_key.get_secret_value(), "proof-url")
        self.base = (settings.public_base_url or "").rstrip("/")

    def _sign(self, key: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def url(self, key: str, ttl_s: int, *, now: float | None = None) -> str:
        """A link valid for `ttl_s` seconds; absolute when PUBLIC_BASE_URL is set."""
        expires = int(now if now is not None else time.time()) + ttl_s
        query = urlencode({"exp": expires, "sig": self._sign(check_key(key), expires)})
        return f"{self.base}/proofs/{key}?{query}"

    def verify(self, key: str, exp: str | None, sig: str | None) -> bool:
        """True for an untampered, unexpired link to a well-formed key."""
        try:
            check_key(key)
            expires = int(exp or "")
        except (InvalidKey, ValueError):
            return False
        if expires < time.time() or not sig:
            return False
        return hmac.compare_digest(sig, self._sign(key, expires))
