"""What every emitter writes through: the landing folder, the lookups and the id counters."""

from __future__ import annotations

from dataclasses import dataclass

from bclake.simulator.export import Landing
from bclake.simulator.lookup import Lookup
from bclake.simulator.state import Serials


@dataclass
class Out:
    """Where exports go (`landing`), how indices print (`lookup`), the next ids (`serials`)."""

    landing: Landing
    lookup: Lookup
    serials: Serials
