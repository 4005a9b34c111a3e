"""SQLModel tables, one module per aggregate. Importing this package registers them all."""

from src.models.ai_sessions import AIChatTranscript, AISession
from src.models.auth import (
    AuthSession,
    Consent,
    RateLimitCounter,
    RefreshToken,
    SmsCode,
    WechatAccessToken,
)
from src.models.base import utcnow
from src.models.blocks import ContentReview, UserBlock, WhisperSenderBlock
from src.models.institutions import Institution
from src.models.matches import SocketPresence, SubscribeCredit, UserMatch
from src.models.outbox import VectorOutbox
from src.models.payments import IdempotencyKey, PaymentOrder
from src.models.plans import Membership, UserQuota
from src.models.profiles import UserProfile, UserProject
from src.models.reports import MediaCheck, ModerationAction, UserReport
from src.models.swipes import UserSwipe
from src.models.users import User
from src.models.whispers import Whisper

__all__ = [
    "AIChatTranscript",
    "AISession",
    "AuthSession",
    "Consent",
    "ContentReview",
    "IdempotencyKey",
    "Institution",
    "MediaCheck",
    "Membership",
    "ModerationAction",
    "PaymentOrder",
    "RateLimitCounter",
    "RefreshToken",
    "SmsCode",
    "SocketPresence",
    "SubscribeCredit",
    "User",
    "UserBlock",
    "UserMatch",
    "UserProfile",
    "UserProject",
    "UserQuota",
    "UserReport",
    "UserSwipe",
    "VectorOutbox",
    "WechatAccessToken",
    "Whisper",
    "WhisperSenderBlock",
    "utcnow",
]
