"""What every control function receives: the process's services and the caller's region and account."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tastemaker.services import Services


@dataclass
class RequestContext:
    """One API call: the services plus the region from the caller's credential scope."""

    services: Services
    region: str

    @property
    def account(self) -> str:
        return self.services.settings.account_id

    @property
    def engine(self) -> sa.Engine:
        return self.services.engine

    @property
    def read_engine(self) -> sa.Engine:
        return self.services.read_engine
