"""Server settings: one object, from defaults, the environment (``VOXCAST_*``) and the CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable about one VoxCast process.

    Environment variables: ``VOXCAST_DATA_DIR``, ``VOXCAST_HOST``, ``VOXCAST_PORT``,
    ``VOXCAST_DICOM_PORT``, ``VOXCAST_AE_TITLE``, ``VOXCAST_DATABASE_URL``,
    ``VOXCAST_SERIES_QUIET_SECONDS``, ``VOXCAST_MAX_UPLOAD_BYTES``, ``VOXCAST_RENDER_WORKERS``,
    ``VOXCAST_SESSION_IDLE_SECONDS``, ``VOXCAST_SESSION_MAX_IDLE_SECONDS``,
    ``VOXCAST_MAX_SESSIONS``, ``VOXCAST_GPU``, ``VOXCAST_GPU_CACHE_BYTES``.
    """

    model_config = SettingsConfigDict(env_prefix="VOXCAST_", extra="ignore")

    data_dir: Path = Path("./voxcast-data")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    dicom_port: int = Field(default=11112, ge=0, le=65535)
    ae_title: str = Field(default="VOXCAST", min_length=1, max_length=16)
    # Empty means SQLite inside the data directory.
    database_url: str = ""
    # A series is complete when no instance arrived for this long; then its volume is built.
    series_quiet_seconds: float = Field(default=3.0, ge=0.0)
    # RAM budget of the in-memory volume cache used for rendering (bytes).
    volume_cache_bytes: int = Field(default=4 * 1024**3, ge=0)
    # Render sessions: worker threads that render and encode frames (0 = one per core), how
    # long a session without a connected client lives, how long one without any input lives,
    # and how many the process holds at once.
    render_workers: int = Field(default=0, ge=0, le=256)
    session_idle_seconds: float = Field(default=60.0, gt=0)
    session_max_idle_seconds: float = Field(default=3600.0, gt=0)
    max_sessions: int = Field(default=64, ge=1)
    # Render on an NVIDIA GPU when cupy sees one ("auto") or never ("off"), keeping device
    # copies of the volumes within this budget (bytes).
    gpu: str = Field(default="auto", pattern="^(auto|off)$")
    gpu_cache_bytes: int = Field(default=16 * 1024**3, ge=0)
    # Largest STOW-RS request body accepted (bytes).
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite').resolve()}"
