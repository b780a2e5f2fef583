"""One Settings object built from flags and TASTEMAKER_* environment variables; nothing else reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Where state lives and how the server behaves. Flags override the environment."""

    data_dir: Path = Path(".tastemaker")
    host: str = "127.0.0.1"
    port: int = 8080
    db_url: str | None = None  # default: sqlite file in data_dir
    blob_url: str | None = None  # default: data_dir/blobs
    account_id: str = "000000000000"
    default_region: str = "us-east-1"
    import_roots: tuple[Path, ...] = ()
    s3_endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    key_encryption_key: str | None = None  # encrypts access-key secrets at rest; default DATA_DIR/access-keys.kek
    job_threads: int = 2  # worker threads inside `serve`; 0 = no embedded worker
    job_stale_seconds: float = 30.0  # a running job without heartbeat for this long is recovered
    job_poll_seconds: float = 0.2
    workers: int = 1  # API worker processes
    redis_url: str | None = None
    max_skew_seconds: int = 300
    # How often the job runner looks for due automatic trainings and campaigns behind their solution's $LATEST.
    maintenance_seconds: float = 5.0
    # Automatic training: the first version comes this long after the solution turns ACTIVE (Personalize: within
    # an hour), then one every `rate(N days)` of the solution's schedule, a day being `day_seconds` long (shorter
    # only to try schedules out).
    auto_training_first_seconds: float = 3600.0
    day_seconds: float = 86400.0
    # Monitoring (tastemaker.monitoring): stderr logs, a Prometheus port on loopback, the audit trail's retention.
    log_level: str = "info"
    log_format: str = "text"  # text | json
    metrics_port: int | None = None  # also /metrics on the API port, signed like any call
    metrics_host: str = "127.0.0.1"
    audit_retention_days: float = 90.0
    request_metrics: bool = True  # per-request metrics (off: no request series; jobs and the rest still count)
    # Metric attribution: also PutMetricData each attributed window to this CloudWatch namespace (boto3; its
    # endpoint from AWS_ENDPOINT_URL_CLOUDWATCH); None publishes nowhere but /metrics and the read API.
    attribution_cloudwatch_namespace: str | None = None
    # Spark backend (tastemaker.spark): the master URL, and the fewest plain lines in one block of a batch
    # inference file that go to Spark (smaller blocks score faster in-process than a Spark job starts).
    spark_master: str | None = None
    spark_min_lines: int = 100_000
    # ... the fewest source bytes of an import read on Spark, and the fewest trained users of a batch segment job
    # scored on Spark (below them a Spark job costs more than it saves).
    spark_min_import_bytes: int = 1 << 30
    spark_min_segment_users: int = 1_000_000

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'tastemaker.db').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        return self.blob_url or str((self.data_dir / "blobs").resolve())

    @property
    def imports_dir(self) -> Path:
        """DATA_DIR/imports is always an import root, so a local server can import files put there."""
        return self.data_dir / "imports"

    @property
    def effective_import_roots(self) -> tuple[Path, ...]:
        return (*self.import_roots, self.imports_dir)

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from TASTEMAKER_* variables, then non-None keyword overrides (the CLI flags)."""
        roots = tuple(Path(p) for p in (_env("TASTEMAKER_IMPORT_ROOTS") or "").split(":") if p)
        base = cls(
            data_dir=Path(_env("TASTEMAKER_DATA_DIR", ".tastemaker") or ".tastemaker"),
            db_url=_env("TASTEMAKER_DB_URL"),
            blob_url=_env("TASTEMAKER_BLOB_URL"),
            account_id=_env("TASTEMAKER_ACCOUNT_ID", "000000000000") or "000000000000",
            default_region=_env("TASTEMAKER_REGION", "us-east-1") or "us-east-1",
            import_roots=roots,
            s3_endpoint_url=_env("TASTEMAKER_S3_ENDPOINT_URL"),
            access_key_id=_env("TASTEMAKER_ACCESS_KEY_ID"),
            secret_access_key=_env("TASTEMAKER_SECRET_ACCESS_KEY"),
            key_encryption_key=_env("TASTEMAKER_KEY_ENCRYPTION_KEY"),
            job_threads=int(_env("TASTEMAKER_JOB_THREADS", "2") or 2),
            job_stale_seconds=float(_env("TASTEMAKER_JOB_STALE_SECONDS", "30") or 30),
            maintenance_seconds=float(_env("TASTEMAKER_MAINTENANCE_SECONDS", "5") or 5),
            auto_training_first_seconds=float(_env("TASTEMAKER_AUTO_TRAINING_FIRST_SECONDS", "3600") or 3600),
            day_seconds=float(_env("TASTEMAKER_DAY_SECONDS", "86400") or 86400),
            redis_url=_env("TASTEMAKER_REDIS_URL"),
            log_level=(_env("TASTEMAKER_LOG_LEVEL", "info") or "info").lower(),
            log_format=(_env("TASTEMAKER_LOG_FORMAT", "text") or "text").lower(),
            metrics_port=int(_env("TASTEMAKER_METRICS_PORT", "0") or 0) or None,
            metrics_host=_env("TASTEMAKER_METRICS_HOST", "127.0.0.1") or "127.0.0.1",
            audit_retention_days=float(_env("TASTEMAKER_AUDIT_RETENTION_DAYS", "90") or 90),
            attribution_cloudwatch_namespace=_env("TASTEMAKER_ATTRIBUTION_CLOUDWATCH_NAMESPACE"),
            request_metrics=(_env("TASTEMAKER_REQUEST_METRICS", "on") or "on").lower() not in ("off", "0", "false"),
            spark_master=_env("TASTEMAKER_SPARK_MASTER"),
            spark_min_lines=int(_env("TASTEMAKER_SPARK_MIN_LINES", "100000") or 100_000),
            spark_min_import_bytes=int(_env("TASTEMAKER_SPARK_MIN_IMPORT_BYTES", str(1 << 30)) or 1 << 30),
            spark_min_segment_users=int(_env("TASTEMAKER_SPARK_MIN_SEGMENT_USERS", "1000000") or 1_000_000),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "import_roots" in clean:
            clean["import_roots"] = tuple(base.import_roots) + tuple(Path(p) for p in clean["import_roots"])
        if "data_dir" in clean:
            clean["data_dir"] = Path(clean["data_dir"])
        return replace(base, **clean)
