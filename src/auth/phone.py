"""Phone numbers in E.164 form (+8613800138000), with a default region for local numbers."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str, default_region: str = "+86") -> str:
    """Return the E.164 form of `raw`, or raise InvalidPhone.

    Accepts local Chinese mobiles (13800138000), `+86 138-0013-8000`, `0086…` and other
    countries' numbers in international form. Mainland numbers must be real mobile numbers,
    since SMS codes go to them.
    """
    text = _SEPARATORS.sub("", raw or "")
    if len(text) > 20:
        raise InvalidPhone("too long")
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        text = default_region + text
    if not _E164.match(text):
        raise InvalidPhone("not a phone number")
    if text.startswith("+86") and not _CN_MOBILE.match(text[3:]):
        raise InvalidPhone("not a mainland China mobile number")
    return text


def mask_phone(phone: str) -> str:
    """For logs: +86138****8000."""
    return phone[:6] + "****" + phone[-4:] if len(phone) > 10 else "****"
