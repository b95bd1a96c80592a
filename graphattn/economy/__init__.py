"""The supply-chain shock simulation that produces ground truth for the economy study."""

from .simulation import ShockDynamics, SimulationResult, random_shocks, simulate

__all__ = ["ShockDynamics", "SimulationResult", "random_shocks", "simulate"]
