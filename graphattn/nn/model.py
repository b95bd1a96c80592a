"""``GraphTransformer``: encoder, positional encodings, blocks, node- and graph-level heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from .._checks import (
    check_features,
    check_index_tensor,
    check_positive_int,
    check_same_device,
)
from ..conv import AttentionOutput
from ..engines import available_engines
from ..patterns import EdgeList, Pattern
from .block import NORMS, GraphTransformerBlock
from .positional import (
    GridPositionalEncoding,
    LearnedPositionalEncoding,
    SinusoidalGridEncoding,
    SinusoidalPositionalEncoding,
    _check_grid_size,
    positions_in_graph,
)
from .regularization import orthogonality_penalty

__all__ = ["GraphTransformer", "GraphTransformerConfig", "GraphTransformerOutput"]

POSITIONAL = (None, "sinusoidal", "learned", "grid", "grid-sinusoidal")
GRID = ("grid", "grid-sinusoidal")  # 2-D encodings: `grid_size`, `pos` [N, 2]
POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


@dataclass
class GraphTransformerConfig:
    """Hyper-parameters of a :class:`GraphTransformer` (checked when the config is built).

    >>> GraphTransformerConfig(in_channels=3, channels=32, heads=4).num_layers
    2
    """

    in_channels: int  # input node feature size
    channels: int = 64  # d_model (total width, split across heads)
    heads: int = 4  # attention heads per block; must divide `channels`
    num_layers: int = 2  # number of GraphTransformerBlocks
    out_channels: int = 1  # size of node- and graph-level outputs
    norm: str = "pre"  # "pre" (Pre-LN, final LayerNorm added) | "post" (Post-LN)
    ffn_ratio: int = 4  # FFN hidden size = ffn_ratio * channels
    dropout: float = 0.0  # embedding, residual and attention-weight dropout
    checkpoint: bool = False  # activation checkpointing per block
    engine: str = "auto"  # attention engine for every block ("auto" or a registered name)
    edge_dim: int | None = None  # edge features, passed to every attention layer
    num_relations: int | None = None  # relation types, passed to every attention layer
    positional: str | None = None  # None | "sinusoidal" | "learned" (1-D) | "grid" (2-D learned)
    #   | "grid-sinusoidal" (2-D fixed)
    max_len: int = 4096  # positions of the "learned" 1-D table
    grid_size: tuple[int, int] | None = None  # (rows, cols) of the 2-D ("grid*") encoding
    pool: str = "mean"  # "mean" | "sum" | "max" for the graph-level output
    orthogonality: float = 0.0  # weight of the heads' orthogonality penalty in regularization()

    def __post_init__(self) -> None:
        for name in ("in_channels", "channels", "heads", "num_layers", "out_channels", "max_len"):
            check_positive_int(name, getattr(self, name))
        if self.channels % self.heads != 0:
            raise ValueError(f"`heads` ({self.heads}) must divide `channels` ({self.channels})")
        if self.norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {self.norm!r}")
        if isinstance(self.ffn_ratio, bool) or not isinstance(self.ffn_ratio, (int, float)):
            raise TypeError(f"`ffn_ratio` must be a number, got {type(self.ffn_ratio).__name__}")
        if self.ffn_ratio <= 0:
            raise ValueError(f"`ffn_ratio` must be > 0, got {self.ffn_ratio}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise TypeError(f"`dropout` must be a float, got {type(self.dropout).__name__}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout}")
        if not isinstance(self.checkpoint, bool):
            raise TypeError(f"`checkpoint` must be a bool, got {type(self.checkpoint).__name__}")
        if not isinstance(self.engine, str):
            raise TypeError(f"`engine` must be a str, got {type(self.engine).__name__}")
        if self.engine != "auto" and self.engine not in available_engines():
            raise ValueError(
                f"unknown `engine` {self.engine!r}; expected 'auto' or one of {available_engines()}"
            )
        for name in ("edge_dim", "num_relations"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if self.positional not in POSITIONAL:
            raise ValueError(f"`positional` must be one of {POSITIONAL}, got {self.positional!r}")
        if self.positional in GRID:
            if self.grid_size is None:
                raise ValueError(f"positional={self.positional!r} needs `grid_size` (rows, cols)")
            self.grid_size = _check_grid_size("grid_size", self.grid_size)
        elif self.grid_size is not None:
            raise ValueError(
                f"`grid_size` is only used with positional in {GRID}, got {self.positional!r}"
            )
        if self.pool not in POOLS:
            raise ValueError(f"`pool` must be one of {tuple(POOLS)}, got {self.pool!r}")
        if isinstance(self.orthogonality, bool) or not isinstance(self.orthogonality, (int, float)):
            raise TypeError(
                f"`orthogonality` must be a float, got {type(self.orthogonality).__name__}"
            )
        if not self.orthogonality >= 0.0:
            raise ValueError(f"`orthogonality` must be >= 0, got {self.orthogonality}")


class GraphTransformerOutput(NamedTuple):
    """What :class:`GraphTransformer` returns.

    Attributes:
        node: ``[N, out_channels]`` node-level outputs.
        graph: ``[B, out_channels]`` graph-level outputs, pooled per graph of the batch.
        attention: with ``return_attention=True``, one
            :class:`~graphattn.AttentionOutput` per layer (first layer first); else
            :obj:`None`.
    """

    node: Tensor
    graph: Tensor
    attention: tuple[AttentionOutput, ...] | None = None


class GraphTransformer(nn.Module):
    r"""A transformer over graphs: every block attends over the incoming edges of each node.

    ``x -> Linear(in_channels, channels) (+ positional encoding) -> Dropout -> blocks ->
    LayerNorm (Pre-LN only)`` gives hidden node states :math:`h`; then

    - ``node = Linear(h)`` :math:`(N, \text{out})`,
    - ``graph = Linear(pool(h, batch))`` :math:`(B, \text{out})`, with PyG's
      ``global_{mean,add,max}_pool`` per graph of the batch.

    The graphs of a batch come from ``batch`` (PyG's batch vector), else from the pattern's
    ``ptr``, else all nodes form one graph (:math:`B = 1`).

    Positions (``config.positional``): ``"sinusoidal"`` and ``"learned"`` take ``pos`` int64
    :math:`(N)`, by default each node's index within its graph; ``"grid"`` (a learned table)
    and ``"grid-sinusoidal"`` (fixed, :class:`~graphattn.nn.positional.SinusoidalGridEncoding`)
    take ``pos`` :math:`(N, 2)` (row, col), by default the row-major index within each graph
    (every graph must then have ``rows * cols`` nodes). ``grid_size=`` in :meth:`forward` runs
    the model on another grid: the learned table interpolated bicubically to it, or the patch
    centres mapped onto the trained grid.

    Args:
        config (GraphTransformerConfig): the hyper-parameters.

    >>> import torch
    >>> from graphattn import FullGraph
    >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, channels=16, heads=2))
    >>> out = model(torch.randn(7, 3), FullGraph.from_sizes([3, 4]))
    >>> out.node.shape, out.graph.shape
    (torch.Size([7, 1]), torch.Size([2, 1]))
    """

    def __init__(self, config: GraphTransformerConfig):
        if not isinstance(config, GraphTransformerConfig):
            raise TypeError(
                f"`config` must be a GraphTransformerConfig, got {type(config).__name__}"
            )
        super().__init__()
        self.config = c = config
        self.encoder = nn.Linear(c.in_channels, c.channels)
        if c.positional == "sinusoidal":
            self.positional = SinusoidalPositionalEncoding(c.channels)
        elif c.positional == "learned":
            self.positional = LearnedPositionalEncoding(c.channels, c.max_len)
        elif c.positional == "grid":
            self.positional = GridPositionalEncoding(c.channels, c.grid_size)
        elif c.positional == "grid-sinusoidal":
            self.positional = SinusoidalGridEncoding(c.channels, c.grid_size)
        else:
            self.register_module("positional", None)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            GraphTransformerBlock(
                c.channels,
                c.heads,
                norm=c.norm,
                ffn_ratio=c.ffn_ratio,
                dropout=c.dropout,
                checkpoint=c.checkpoint,
                engine=c.engine,
                edge_dim=c.edge_dim,
                num_relations=c.num_relations,
            )
            for _ in range(c.num_layers)
        )
        self.norm = nn.LayerNorm(c.channels) if c.norm == "pre" else nn.Identity()
        self.head_node = nn.Linear(c.channels, c.out_channels)
        self.head_graph = nn.Linear(c.channels, c.out_channels)
        self._pool = POOLS[c.pool]

    def forward(
        self,
        x: Tensor,
        edge_index,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        batch: Tensor | None = None,
        pos: Tensor | None = None,
        *,
        grid_size: tuple[int, int] | None = None,
        return_attention: bool = False,
        head_mask: Tensor | None = None,
    ) -> GraphTransformerOutput:
        """Run the model.

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: the graph, in any form :class:`~graphattn.MultiHeadAttentionConv`
                takes; a plain ``[2, E]`` tensor is wrapped into one
                :class:`~graphattn.EdgeList` for all layers, so that what the engines derive
                from it (a CSR, self-loops) is built once per call.
            edge_attr: ``[E, edge_dim]`` edge features (configs with ``edge_dim``).
            edge_type: int ``[E]`` relation types (configs with ``num_relations``).
            batch: int ``[N]`` graph of each node (PyG's batch vector); default: the
                pattern's graphs, or one graph.
            pos: int ``[N]`` (1-D encodings) or ``[N, 2]`` (grid) positions; default: the
                position of each node within its graph.
            grid_size: ``(rows, cols)`` of the input grid when it differs from
                ``config.grid_size`` (the 2-D encodings only).
            return_attention: also return every layer's attention weights
                (``output.attention``).
            head_mask: ``[num_layers, heads]`` factor per layer and head on the heads'
                attention outputs (``0`` removes a head).
        """
        c = self.config
        check_features("x", x, self)
        if x.dim() != 2 or x.size(1) != c.in_channels:
            raise ValueError(f"`x` must have shape [N, {c.in_channels}], got {list(x.shape)}")
        if head_mask is not None:
            if not isinstance(head_mask, Tensor):
                raise TypeError(
                    f"`head_mask` must be a torch.Tensor, got {type(head_mask).__name__}"
                )
            if head_mask.shape != (c.num_layers, c.heads):
                raise ValueError(
                    f"`head_mask` must have shape [{c.num_layers}, {c.heads}] (layers x heads), "
                    f"got {list(head_mask.shape)}"
                )
        num_nodes = x.size(0)
        batch, num_graphs = self._graphs(x, edge_index, batch)
        if type(edge_index) is Tensor and edge_index.layout == torch.strided:
            edge_index = EdgeList(edge_index, num_nodes)  # one graph object for every layer

        h = self.encoder(x)  # (N, C)
        if self.positional is not None:
            h = h + self._encode_positions(pos, batch, num_nodes, grid_size, x.device).to(h.dtype)
        elif pos is not None:
            raise ValueError("`pos` given, but the config has positional=None")
        if grid_size is not None and c.positional not in GRID:
            raise ValueError(f"`grid_size` is only used with positional in {GRID}")
        h = self.dropout(h)
        attention = []
        for layer, block in enumerate(self.blocks):
            mask = None if head_mask is None else head_mask[layer]
            h = block(
                h, edge_index, edge_attr=edge_attr, edge_type=edge_type,
                return_attention=return_attention, head_mask=mask,
            )  # fmt: skip
            if return_attention:
                h, att = h
                attention.append(att)
        h = self.norm(h)

        pooled = self._pool(h, batch, num_graphs)  # (B, C)
        return GraphTransformerOutput(
            self.head_node(h),
            self.head_graph(pooled),
            tuple(attention) if return_attention else None,
        )

    def regularization(self) -> Tensor:
        r"""The terms to add to the task loss: ``loss = task_loss + model.regularization()``.

        Now one term, ``config.orthogonality`` times
        :func:`graphattn.analysis.orthogonality_penalty` of the blocks' attention layers (the
        mean overlap of the heads' query/key subspaces, 0 when they are orthogonal). A 0-dim
        tensor; exactly 0 (and no extra compute) when ``config.orthogonality == 0``.

        >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, orthogonality=0.1))
        >>> model.regularization().requires_grad
        True
        """
        weight = self.config.orthogonality
        if weight == 0:
            return self.encoder.weight.new_zeros(())
        return weight * orthogonality_penalty(self)

    # ---- helpers ----------------------------------------------------------------------------
    def _graphs(
        self, x: Tensor, graph: Tensor | Pattern, batch: Tensor | None
    ) -> tuple[Tensor, int]:
        """The batch vector and the number of graphs."""
        num_nodes = x.size(0)
        if batch is not None:
            check_index_tensor("batch", batch)
            if batch.dim() != 1 or batch.numel() != num_nodes:
                raise ValueError(
                    f"`batch` must have shape [{num_nodes}] (one graph index per node), "
                    f"got {list(batch.shape)}"
                )
            check_same_device("batch", batch, x)
            if num_nodes > 0 and int(batch.min()) < 0:
                raise ValueError(f"`batch` must be >= 0, got {int(batch.min())}")
            batch = batch.long()
            if isinstance(graph, Pattern):
                num_graphs = graph.num_graphs
                if num_nodes > 0 and int(batch.max()) >= num_graphs:
                    raise ValueError(
                        f"`batch` refers to graph {int(batch.max())} but the pattern has "
                        f"{num_graphs} graphs"
                    )
            else:
                num_graphs = int(batch.max()) + 1 if num_nodes > 0 else 0
            return batch, num_graphs
        if isinstance(graph, Pattern):
            if graph.num_nodes != num_nodes:
                raise ValueError(f"the pattern has {graph.num_nodes} nodes but `x` has {num_nodes}")
            return graph.batch(x.device), graph.num_graphs
        return torch.zeros(num_nodes, dtype=torch.long, device=x.device), 1

    def _encode_positions(
        self,
        pos: Tensor | None,
        batch: Tensor,
        num_nodes: int,
        grid_size: tuple[int, int] | None,
        device: torch.device,
    ) -> Tensor:
        c = self.config
        if c.positional not in GRID:
            if pos is None:
                pos = positions_in_graph(batch, num_nodes).to(device)
            elif isinstance(pos, Tensor) and pos.dim() == 1 and pos.numel() != num_nodes:
                raise ValueError(f"`pos` must have shape [{num_nodes}], got {list(pos.shape)}")
            return self.positional(pos)
        rows, cols = c.grid_size if grid_size is None else _check_grid_size("grid_size", grid_size)
        if pos is None:
            index = positions_in_graph(batch, num_nodes).to(device)
            sizes = torch.bincount(batch, minlength=1) if num_nodes > 0 else batch.new_zeros(0)
            bad = sizes[(sizes != 0) & (sizes != rows * cols)]
            if bad.numel() > 0:
                raise ValueError(
                    f"a graph has {int(bad[0])} nodes, not rows*cols = {rows * cols} of the "
                    f"{rows}x{cols} grid; pass `pos` [N, 2] or the right `grid_size`"
                )
            pos = torch.stack([index // cols, index % cols], dim=1)  # (N, 2): row-major
        elif isinstance(pos, Tensor) and pos.dim() == 2 and pos.size(0) != num_nodes:
            raise ValueError(f"`pos` must have shape [{num_nodes}, 2], got {list(pos.shape)}")
        return self.positional(pos, grid_size)  # the trained grid when `grid_size` is None
