"""Graph builders: networkx-based generators that return PyG ``Data``."""

from .economy import (
    DEFAULT_TIERS,
    RELATION_NAMES,
    economy_arrays,
    economy_data,
    from_data,
    supply_chain_economy,
    to_data,
)

__all__ = [
    "DEFAULT_TIERS",
    "RELATION_NAMES",
    "economy_arrays",
    "economy_data",
    "from_data",
    "supply_chain_economy",
    "to_data",
]
