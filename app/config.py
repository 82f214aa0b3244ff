"""Settings: the one place that reads the environment.

Every service reads the same variables, so one host or many, embedded or
over RabbitMQ, configure the same way (see docker-compose.yml).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """AstroHunter's settings, from environment variables (names in capitals)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path("data"), alias="DATA_DIR")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_host: str | None = Field(None, alias="REDIS_HOST")
    redis_port: int = Field(6379, alias="REDIS_PORT")
    rabbitmq_host: str | None = Field(None, alias="RABBITMQ_HOST")
    rabbitmq_port: int = Field(5672, alias="RABBITMQ_PORT")
    rabbitmq_user: str = Field("guest", alias="RABBITMQ_USER")
    rabbitmq_password: str = Field("guest", alias="RABBITMQ_PASSWORD")
    rabbitmq_vhost: str = Field("/", alias="RABBITMQ_VHOST")
    broker: Literal["auto", "rabbitmq", "memory"] = Field("auto", alias="ASTROHUNTER_BROKER")
    data_retention_days: float = Field(7, alias="DATA_RETENTION_DAYS")
    min_disk_space_gb: float = Field(10, alias="MIN_DISK_SPACE_GB")
    cleanup_schedule_hours: float = Field(24, alias="CLEANUP_SCHEDULE_HOURS")
    device: Literal["cpu", "gpu"] = Field("cpu", alias="ASTROHUNTER_DEVICE")
    local_roots_env: str = Field("", alias="ASTROHUNTER_LOCAL_ROOTS")
    api_key: str | None = Field(None, alias="ASTROHUNTER_API_KEY")
    # Survey sources (app/sources): endpoints, and how downloads behave.
    tesscut_url: str = Field(
        "https://mast.stsci.edu/tesscut/api/v0.1/", alias="ASTROHUNTER_TESSCUT_URL"
    )
    irsa_url: str = Field("https://irsa.ipac.caltech.edu/ibe/", alias="ASTROHUNTER_IRSA_URL")
    download_timeout_s: float = Field(60.0, gt=0, alias="ASTROHUNTER_DOWNLOAD_TIMEOUT")
    download_retries: int = Field(4, ge=0, alias="ASTROHUNTER_DOWNLOAD_RETRIES")
    download_backoff_s: float = Field(2.0, ge=0, alias="ASTROHUNTER_DOWNLOAD_BACKOFF")
    source_concurrency: int = Field(2, ge=1, alias="ASTROHUNTER_SOURCE_CONCURRENCY")
    # Bounds on what one job, one request or one broker can do to a service.
    job_memory_gb: float = Field(6.0, gt=0, alias="ASTROHUNTER_JOB_MEMORY_GB")
    max_deliveries: int = Field(4, ge=1, alias="ASTROHUNTER_MAX_DELIVERIES")
    publish_timeout_s: float = Field(5.0, gt=0, alias="ASTROHUNTER_PUBLISH_TIMEOUT")
    redispatch_after_s: float = Field(30.0, gt=0, alias="ASTROHUNTER_REDISPATCH_AFTER")
    # Known objects (app/catalog.py, app/skybot.py) and submission reports (detectors/ades.py).
    orbits_file: Path | None = Field(None, alias="ASTROHUNTER_ORBITS")
    mpcorb_url: str = Field(
        "https://www.minorplanetcenter.net/iau/MPCORB/MPCORB.DAT.gz",
        alias="ASTROHUNTER_MPCORB_URL",
    )
    obscodes_url: str = Field(
        "https://www.minorplanetcenter.net/iau/lists/ObsCodes.html",
        alias="ASTROHUNTER_OBSCODES_URL",
    )
    skybot_url: str = Field(
        "https://ssp.imcce.fr/webservices/skybot/api/conesearch.php",
        alias="ASTROHUNTER_SKYBOT_URL",
    )
    skybot_timeout_s: float = Field(30.0, gt=0, alias="ASTROHUNTER_SKYBOT_TIMEOUT")
    known: Literal["auto", "mpcorb", "skybot", "none"] = Field("auto", alias="ASTROHUNTER_KNOWN")
    observatory_code: str | None = Field(
        None, pattern=r"^[0-9A-Z]\d\d$", alias="ASTROHUNTER_OBSERVATORY"
    )
    submitter: str | None = Field(None, alias="ASTROHUNTER_SUBMITTER")
    observers_env: str = Field("", alias="ASTROHUNTER_OBSERVERS")
    measurers_env: str = Field("", alias="ASTROHUNTER_MEASURERS")
    telescope: str | None = Field(None, alias="ASTROHUNTER_TELESCOPE")
    telescope_design: str | None = Field(None, alias="ASTROHUNTER_TELESCOPE_DESIGN")
    telescope_aperture_m: float | None = Field(None, gt=0, alias="ASTROHUNTER_TELESCOPE_APERTURE")
    telescope_detector: str = Field("CCD", alias="ASTROHUNTER_TELESCOPE_DETECTOR")

    @property
    def local_roots(self) -> list[str]:
        """Folders the ``local`` source may read (``ASTROHUNTER_LOCAL_ROOTS``, colon-separated)."""
        return [p for p in self.local_roots_env.split(":") if p]

    @property
    def catalog_dir(self) -> Path:
        """Where ``astrohunter orbits update`` puts MPCORB, the code list and the parsed cache."""
        return self.data_dir / "catalog"

    @property
    def observers(self) -> list[str]:
        """Observers' names for reports (``ASTROHUNTER_OBSERVERS``, semicolon-separated)."""
        return [n.strip() for n in self.observers_env.split(";") if n.strip()]

    @property
    def measurers(self) -> list[str]:
        """Measurers' names for reports (``ASTROHUNTER_MEASURERS``, semicolon-separated)."""
        return [n.strip() for n in self.measurers_env.split(";") if n.strip()]

    @property
    def db_url(self) -> str:
        """``DATABASE_URL``, or SQLite in the data folder."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'astrohunter.db').resolve()}"

    @property
    def broker_kind(self) -> Literal["rabbitmq", "memory"]:
        """RabbitMQ when a host is configured, else the in-process broker."""
        if self.broker != "auto":
            return self.broker
        return "rabbitmq" if self.rabbitmq_host else "memory"

    @property
    def rabbitmq_url(self) -> str:
        vhost = quote(self.rabbitmq_vhost, safe="")
        return (
            f"amqp://{self.rabbitmq_user}:{self.rabbitmq_password}@"
            f"{self.rabbitmq_host or '127.0.0.1'}:{self.rabbitmq_port}/{vhost}"
        )

    def job_dir(self, job_id: str) -> Path:
        """Where a job's files live: ``raw/`` frames, ``work/`` arrays, ``results/``."""
        return self.data_dir / "jobs" / job_id


@functools.cache
def get_settings() -> Settings:
    """The process's settings (read once)."""
    return Settings()
