"""Transformer building blocks on graphs: blocks, a configurable model, positional encodings."""

from .block import FeedForward, GraphTransformerBlock
from .model import GraphTransformer, GraphTransformerConfig, GraphTransformerOutput
from .positional import (
    GridPositionalEncoding,
    LearnedPositionalEncoding,
    SinusoidalGridEncoding,
    SinusoidalPositionalEncoding,
    interpolate_grid,
    positions_in_graph,
    sinusoidal_table,
)

__all__ = [
    "FeedForward",
    "GraphTransformer",
    "GraphTransformerBlock",
    "GraphTransformerConfig",
    "GraphTransformerOutput",
    "GridPositionalEncoding",
    "LearnedPositionalEncoding",
    "SinusoidalGridEncoding",
    "SinusoidalPositionalEncoding",
    "interpolate_grid",
    "positions_in_graph",
    "sinusoidal_table",
]
