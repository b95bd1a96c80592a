"""Supply-chain economies in one place: generate them, convert them (networkx <-> PyG), and
simulate shocks on them.

- :mod:`.generate`: seeded multi-tier economies with several relation types, as arrays or a
  PyG ``Data`` (no networkx needed);
- :mod:`.convert`: the same as a networkx ``MultiDiGraph`` and back (the ``economy`` extra);
- :mod:`.simulate`: an input-output shock model whose state after ``t`` steps depends exactly
  on the ``t``-hop upstream neighbourhood.
"""

from .convert import from_data, supply_chain_economy, to_data
from .generate import DEFAULT_TIERS, RELATION_NAMES, EconomyArrays, economy_arrays, economy_data
from .simulate import ShockDynamics, SimulationResult, random_shocks, simulate

__all__ = [
    "DEFAULT_TIERS",
    "RELATION_NAMES",
    "EconomyArrays",
    "ShockDynamics",
    "SimulationResult",
    "economy_arrays",
    "economy_data",
    "from_data",
    "random_shocks",
    "simulate",
    "supply_chain_economy",
    "to_data",
]
