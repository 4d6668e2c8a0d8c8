"""Cloud configuration, read from the environment (no prefix) by pydantic-settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    """Every setting of the cloud service; each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the OWNER role (runs migrations). Unset: embedded PostgreSQL "
        "is started in <STUDYSPOT_DATA_DIR>/pgdata.",
    )
    app_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL the API uses (non-owner role, row-level security applies). "
        "Unset: DATABASE_URL with the user replaced by APP_DB_ROLE / APP_DB_PASSWORD.",
    )
    app_db_role: str = Field(
        default="studyspot_app", description="Name of the non-owner, NOBYPASSRLS role the API logs in as."
    )
    app_db_password: str | None = Field(
        default=None, description="Password set on APP_DB_ROLE by `migrate` (not needed for embedded PG)."
    )
    db_pool_size: int = Field(default=10, ge=1, description="SQLAlchemy connection pool size.")
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for rate limits, cache and pub/sub. Unset: in-process (one worker only).",
    )
    studyspot_data_dir: Path = Field(
        default=Path(".studyspot"),
        description="Directory for local state: embedded PostgreSQL data, master key, KYC files.",
    )
    master_key: str | None = Field(
        default=None,
        description="Base64 (urlsafe) 32-byte key that encrypts secrets at rest (signing keys, KYC, PII). "
        "Unset: generated once into <STUDYSPOT_DATA_DIR>/master.key (mode 0600).",
    )
    jwt_issuer: str = Field(default="studyspot", description="`iss` claim of access tokens.")
    jwt_audience: str = Field(default="studyspot-api", description="`aud` claim of access tokens.")
    jwt_access_ttl_seconds: int = Field(default=900, ge=30, description="Access token lifetime (15 min).")
    jwt_refresh_ttl_seconds: int = Field(
        default=30 * 24 * 3600, ge=60, description="Refresh token lifetime; rotated on every use."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Allowed CORS origins (JSON list); empty means no CORS."
    )
    trusted_hosts: list[str] = Field(
        default_factory=lambda: ["*"], description="Allowed Host headers (JSON list); ['*'] allows any."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (uploads have their own)."
    )
    max_upload_bytes: int = Field(default=5_242_880, ge=1024, description="Largest KYC upload accepted.")
    password_hash_time_cost: int | None = Field(
        default=None, ge=1, description="argon2id time cost; unset: 2 (OWASP's recommended minimum)."
    )
    password_hash_memory_kib: int | None = Field(
        default=None, ge=8, description="argon2id memory in KiB; unset: 19456 (19 MiB, OWASP's minimum)."
    )
    rate_limit_enabled: bool = Field(default=True, description="Turn all rate limits on or off.")
    rate_limit_auth: str = Field(default="5/minute", description="Limit for /api/v1/auth/* per IP.")
    rate_limit_booking: str = Field(default="10/minute", description="Limit for booking writes per user.")
    rate_limit_general: str = Field(default="100/minute", description="Limit for other API calls.")
    rate_limit_upload: str = Field(default="5/minute", description="Limit for file uploads per user.")
    hsts_enabled: bool = Field(default=True, description="Send Strict-Transport-Security.")
    audit_detail_retention_days: int = Field(
        default=365,
        ge=1,
        description="`purge-expired` nulls the detail (may hold PII) of audit rows older than this; "
        "the hash chain still verifies.",
    )
    audit_anchor_interval_minutes: int = Field(
        default=60,
        ge=1,
        description="The worker appends every audit chain's head to <STUDYSPOT_DATA_DIR>/audit-anchors.jsonl "
        "this often (also `studyspot cloud audit-anchor`).",
    )
    audit_anchor_url: AnyHttpUrl | None = Field(
        default=None,
        description="Optional witness URL each audit anchor is POSTed to as JSON (best effort).",
    )

    @property
    def data_dir(self) -> Path:
        return self.studyspot_data_dir
