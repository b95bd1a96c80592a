"""Supply-chain economies in one place: generate them, convert them (networkx <-> PyG), and
simulate shocks on them.

- :mod:`.generate`: seeded multi-tier economies with several relation types, as arrays or a
  PyG ``Data`` (no networkx needed);
- :mod:`.convert`: the same as a networkx ``MultiDiGraph`` and back (the ``economy`` extra);
- :mod:`.simulate`: an input-output shock model whose state after ``t`` steps depends exactly
  on the ``t``-hop upstream neighbourhood;
- :mod:`.scenarios`: named shock scenarios (a supplier fails, a credit crunch, ...), hop
  distances from a shock, losses per tier and in aggregate;
- :mod:`.samples`: training samples of models that learn the cascade (shocks in, losses out)
  and random scenarios of every kind;
- :mod:`.linear`: closed forms of the linear special case (Leontief / Ghosh inverse, the
  influence vector of aggregate volatility); needs scipy.
"""

from .convert import from_data, supply_chain_economy, to_data
from .generate import DEFAULT_TIERS, RELATION_NAMES, EconomyArrays, economy_arrays, economy_data
from .linear import cumulative_impulse_response, influence_vector, long_run_loss, supply_matrix
from .samples import random_scenarios, shock_sample
from .scenarios import (
    SCENARIOS,
    Scenario,
    aggregate_loss,
    custom_scenario,
    hop_distance,
    largest_supplier,
    scenario,
    supplier_reach,
    tier_losses,
)
from .simulate import MAX_STEPS, ShockDynamics, SimulationResult, random_shocks, simulate

__all__ = [
    "DEFAULT_TIERS",
    "MAX_STEPS",
    "RELATION_NAMES",
    "SCENARIOS",
    "EconomyArrays",
    "Scenario",
    "ShockDynamics",
    "SimulationResult",
    "aggregate_loss",
    "cumulative_impulse_response",
    "custom_scenario",
    "economy_arrays",
    "economy_data",
    "from_data",
    "hop_distance",
    "influence_vector",
    "largest_supplier",
    "long_run_loss",
    "random_scenarios",
    "random_shocks",
    "scenario",
    "shock_sample",
    "simulate",
    "supplier_reach",
    "supply_chain_economy",
    "supply_matrix",
    "tier_losses",
    "to_data",
]
