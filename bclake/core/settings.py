"""One place that turns the environment into paths and secrets.

Every other module asks this one where things live, so that two data roots
(`BCLAKE_HOME`) never mix and nothing hard-codes a path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
DEFAULT_INCENTIVES = PROJECT_ROOT / "config" / "incentives.yaml"
DEFAULT_MARKETING = PROJECT_ROOT / "config" / "marketing.yaml"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DEMO_PII_KEY = "bclake-demo-key-not-for-production"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one data root."""

    home: Path
    pii_key: str = DEMO_PII_KEY
    pii_key_from_env: bool = False
    partition_start: str = "2023-01-01"
    alert_webhook: str | None = None
    incentives_file: Path = DEFAULT_INCENTIVES
    marketing_file: Path = DEFAULT_MARKETING

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        """Read `BCLAKE_HOME` (unless `home` is given) and the other `BCLAKE_` settings.

        `BCLAKE_PII_KEY` is the pseudonymisation key (see `require_pii_key`).
        `BCLAKE_PARTITION_START` is the first day of the lake's daily partitions in
        Dagster; rows dated earlier still load, they just have no partition to show.
        `BCLAKE_ALERT_WEBHOOK` is a URL new market-order alerts are posted to (off if unset).
        `BCLAKE_INCENTIVES` is the incentive programme file (default config/incentives.yaml).
        `BCLAKE_MARKETING` is the marketing plan file (default config/marketing.yaml).
        """
        raw_home = home or os.environ.get("BCLAKE_HOME") or PROJECT_ROOT / "data"
        return cls(
            home=Path(raw_home).expanduser().resolve(),
            pii_key=os.environ.get("BCLAKE_PII_KEY") or DEMO_PII_KEY,
            pii_key_from_env=bool(os.environ.get("BCLAKE_PII_KEY")),
            partition_start=os.environ.get("BCLAKE_PARTITION_START", "2023-01-01"),
            alert_webhook=os.environ.get("BCLAKE_ALERT_WEBHOOK") or None,
            incentives_file=Path(os.environ.get("BCLAKE_INCENTIVES") or DEFAULT_INCENTIVES),
            marketing_file=Path(os.environ.get("BCLAKE_MARKETING") or DEFAULT_MARKETING),
        )

    # --- the layers, in the order data flows through them -------------------
    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def build_db(self) -> Path:
        """The working database dbt and the models write; readers never open it."""
        return self.warehouse_dir / "build.duckdb"

    @property
    def published_db(self) -> Path:
        """The only database file dashboards and exports open (read-only)."""
        return self.warehouse_dir / "published.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def is_simulated(self) -> bool:
        """A data root whose landing was written by the simulator (demo data, no real people)."""
        return (self.landing / "_simulation.json").exists()

    def require_pii_key(self) -> None:
        """Refuse to ingest real exports with the public demo key (PIPL: keyed pseudonyms)."""
        if not self.pii_key_from_env and not self.is_simulated:
            raise RuntimeError(
                f"BCLAKE_PII_KEY is not set and {self.landing} holds real exports (no "
                "_simulation.json). Set BCLAKE_PII_KEY to a secret of at least 16 characters; "
                "the built-in key is for simulated demo data only."
            )
        if self.pii_key_from_env and len(self.pii_key) < 16:
            raise RuntimeError("BCLAKE_PII_KEY must be at least 16 characters long.")

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt project reads (see dbt_project/profiles.yml)."""
        return {
            "BCLAKE_HOME": str(self.home),
            "BCLAKE_LAKE": str(self.lake),
            "BCLAKE_BUILD_DB": str(self.build_db),
        }
