"""``MultiHeadAttentionConv``: multi-head self-attention as message passing."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._checks import check_index_tensor, check_same_device
from ..engines.base import EdgeTerms
from ..engines.scatter import AttentionPropagation, scatter_attention
from .dispatch import AttentionRequest, Engine, available_engines, resolve_engine
from .patterns import Pattern

__all__ = ["AttentionOutput", "MultiHeadAttentionConv"]

_HALF = (torch.float16, torch.bfloat16)


class AttentionOutput(NamedTuple):
    """Attention weights of one forward call, returned when ``return_attention=True``.

    Attributes:
        edge_index: ``[2, E]`` edges the weights belong to (the pattern's materialized edges
            when the graph was given as a pattern).
        weights: ``[E, H]`` weights taken before dropout, in float32 or float64; for every
            target node and head they sum to 1 over its incoming edges.
    """

    edge_index: Tensor
    weights: Tensor


class MultiHeadAttentionConv(AttentionPropagation):
    r"""Multi-head self-attention over the incoming edges of every node.

    For a target node :math:`i` with incoming edges :math:`j \to i` and head :math:`h`:

    .. math::
        q_i = W_Q x_i, \quad k_{ij} = W_K x_j + e^K_{ij}, \quad v_{ij} = W_V x_j + e^V_{ij}

        \alpha_{ij}^h = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \Big( \tfrac{1}{\sqrt{d_h}} \langle q_i^h, k_{ij}^h \rangle \Big), \qquad
        x'_i = W_O \,\big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^h v_{ij}^h

    where :math:`e^K_{ij}, e^V_{ij}` are the optional edge-feature projections
    (``edge_dim``) plus the optional learned embeddings of the edge's relation type
    (``num_relations``), added to the edge's key and value as in PyG's
    :class:`~torch_geometric.nn.conv.TransformerConv` (here with separate key and value terms).
    On a complete graph with self-loops this is exactly :class:`torch.nn.MultiheadAttention`
    (see :meth:`from_torch`).

    .. note::
        ``out_channels`` is the **total** width :math:`d_\text{model}`, split into ``heads``
        heads of ``out_channels // heads`` channels, as in :class:`torch.nn.MultiheadAttention`;
        the parameter count does not depend on ``heads``. (PyG's ``TransformerConv`` uses
        ``out_channels`` per head.)

    Nodes with no incoming edge get a zero attention output (only the output bias remains)
    and zero gradient. Duplicate edges count as often as they appear. For float16 and
    bfloat16 inputs, logits, softmax and the weighted sum run in float32 and the query is
    scaled before the dot product, so large activations do not overflow.

    Args:
        in_channels (int): size of each input node feature.
        out_channels (int): total output width, divisible by ``heads``.
        heads (int, optional): number of attention heads. (default: :obj:`1`)
        dropout (float, optional): dropout probability of the attention weights in
            training. (default: :obj:`0.0`)
        bias (bool, optional): learn additive biases in the projections.
            (default: :obj:`True`)
        edge_dim (int, optional): size of edge features; when set, ``forward`` needs
            ``edge_attr``. (default: :obj:`None`)
        num_relations (int, optional): number of relation types; when set, ``forward`` needs
            ``edge_type``. (default: :obj:`None`)
        engine (str, optional): ``"auto"`` or one of the registered engines
            (``"scatter"``, ``"dense"``, ...). ``"auto"`` picks the fastest engine that
            supports the call. (default: :obj:`"auto"`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`; ``edge_index`` :math:`(2, E)` or a
          :class:`~graphattn.attention.patterns.Pattern` over :math:`N` nodes; optional
          ``edge_attr`` :math:`(E, D_e)` and ``edge_type`` :math:`(E)`
        - **output:** node features :math:`(N, F_{out})`, and with ``return_attention=True``
          an :class:`AttentionOutput` with weights :math:`(E, H)`

    >>> import torch
    >>> from graphattn import FullGraph, MultiHeadAttentionConv
    >>> conv = MultiHeadAttentionConv(16, 32, heads=4)
    >>> conv
    MultiHeadAttentionConv(16, 32, heads=4)
    >>> conv(torch.randn(5, 16), FullGraph(5)).shape
    torch.Size([5, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        edge_dim: int | None = None,
        num_relations: int | None = None,
        engine: str = "auto",
    ):
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("out_channels", out_channels)
        _check_positive_int("heads", heads)
        if out_channels % heads != 0:
            raise ValueError(
                f"`heads` ({heads}) must divide `out_channels` ({out_channels}): "
                "out_channels is the total width, split across heads"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"`dropout` must be a float, got {type(dropout).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        if edge_dim is not None:
            _check_positive_int("edge_dim", edge_dim)
        if num_relations is not None:
            _check_positive_int("num_relations", num_relations)
        if not isinstance(engine, str):
            raise TypeError(f"`engine` must be a str, got {type(engine).__name__}")
        if engine != "auto" and engine not in available_engines():
            raise ValueError(
                f"unknown `engine` {engine!r}; expected 'auto' or one of {available_engines()}"
            )
        super().__init__()

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.head_dim = out_channels // heads
        self.dropout = float(dropout)
        self.edge_dim = edge_dim
        self.num_relations = num_relations
        self.engine = engine

        self.lin_query = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_key = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_value = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_out = nn.Linear(out_channels, out_channels, bias=bias)
        if edge_dim is not None:
            self.lin_edge_key = nn.Linear(edge_dim, out_channels, bias=False)
            self.lin_edge_value = nn.Linear(edge_dim, out_channels, bias=False)
        else:
            self.register_module("lin_edge_key", None)
            self.register_module("lin_edge_value", None)
        if num_relations is not None:
            self.rel_key = nn.Parameter(torch.empty(num_relations, out_channels))
            self.rel_value = nn.Parameter(torch.empty(num_relations, out_channels))
        else:
            self.register_parameter("rel_key", None)
            self.register_parameter("rel_value", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_query, self.lin_key, self.lin_value, self.lin_out):
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        for lin in (self.lin_edge_key, self.lin_edge_value):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
        for emb in (self.rel_key, self.rel_value):
            if emb is not None:
                nn.init.normal_(emb, std=self.out_channels**-0.5)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, **kwargs) -> MultiHeadAttentionConv:
        """A layer with the weights of ``mha``, equal to it on a complete graph with self-loops.

        ``mha`` must use one embedding size for query, key and value and no ``bias_k``/
        ``bias_v``/``add_zero_attn``. Extra keyword arguments (such as ``engine``) go to the
        constructor.
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(
                f"`mha` must be a torch.nn.MultiheadAttention, got {type(mha).__name__}"
            )
        if not mha._qkv_same_embed_dim:
            raise ValueError("`mha` must have kdim == vdim == embed_dim")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("`mha` with add_bias_kv or add_zero_attn has no graph equivalent")
        embed = mha.embed_dim
        bias = mha.in_proj_bias is not None
        ref = mha.in_proj_weight
        conv = cls(embed, embed, mha.num_heads, dropout=mha.dropout, bias=bias, **kwargs)
        conv = conv.to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            wq, wk, wv = mha.in_proj_weight.chunk(3)
            conv.lin_query.weight.copy_(wq)
            conv.lin_key.weight.copy_(wk)
            conv.lin_value.weight.copy_(wv)
            conv.lin_out.weight.copy_(mha.out_proj.weight)
            if bias:
                bq, bk, bv = mha.in_proj_bias.chunk(3)
                conv.lin_query.bias.copy_(bq)
                conv.lin_key.bias.copy_(bk)
                conv.lin_value.bias.copy_(bv)
                conv.lin_out.bias.copy_(mha.out_proj.bias)
        return conv

    # ---- forward --------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        edge_index: Tensor | Pattern,
        *,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionOutput]:
        """Attend over incoming edges.

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: int ``[2, E]`` (source, target) pairs, or a
                :class:`~graphattn.attention.patterns.Pattern` over the ``N`` nodes.
            edge_attr: ``[E, edge_dim]`` edge features (layers built with ``edge_dim``).
            edge_type: int ``[E]`` relation types in ``[0, num_relations)`` (layers built with
                ``num_relations``).
            return_attention: also return an :class:`AttentionOutput`.
        """
        num_edges = self._check_inputs(x, edge_index, edge_attr, edge_type)
        heads, dim = self.heads, self.head_dim
        compute = torch.float32 if x.dtype in _HALF else x.dtype

        # the 1/sqrt(d) scale is folded into the query projection's (small) weight and bias,
        # so no extra pass over the [N, H, D] queries, forward or backward
        scale = 1.0 / math.sqrt(dim)
        bias_q = None if self.lin_query.bias is None else self.lin_query.bias * scale
        q = F.linear(x, self.lin_query.weight * scale, bias_q)
        q = q.view(-1, heads, dim).to(compute)  # (N, H, D), scaled
        k = self.lin_key(x).view(-1, heads, dim).to(compute)  # (N, H, D)
        v = self.lin_value(x).view(-1, heads, dim).to(compute)  # (N, H, D)

        terms = self._edge_terms(edge_attr, edge_type, num_edges, compute)
        engine = self._resolve(
            x, edge_index, edge_attr is not None, edge_type is not None, return_attention, compute
        )
        dropout = self.dropout if self.training else 0.0
        if engine.name == "scatter":  # the layer's own propagate, with PyG's hooks
            out, weights = scatter_attention(
                q,
                k,
                v,
                edge_index,
                terms=terms,
                dropout=dropout,
                need_weights=return_attention,
                module=self,
            )
        else:
            out, weights = engine(
                q, k, v, edge_index, terms=terms, dropout=dropout, need_weights=return_attention
            )
        out = out.to(x.dtype).reshape(-1, self.out_channels)  # (N, H * D)
        out = self.lin_out(out)
        if not return_attention:
            return out
        assert weights is not None
        index = edge_index.edge_index(x.device) if isinstance(edge_index, Pattern) else edge_index
        return out, AttentionOutput(index, weights)

    def engine_for(
        self,
        x: Tensor,
        edge_index: Tensor | Pattern,
        *,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        return_attention: bool = False,
    ) -> str:
        """The name of the engine that ``forward`` would run for these inputs."""
        self._check_inputs(x, edge_index, edge_attr, edge_type)
        compute = torch.float32 if x.dtype in _HALF else x.dtype
        return self._resolve(
            x, edge_index, edge_attr is not None, edge_type is not None, return_attention, compute
        ).name

    def _resolve(
        self,
        x: Tensor,
        graph: Tensor | Pattern,
        has_edge_features: bool,
        has_relations: bool,
        need_weights: bool,
        compute: torch.dtype,
    ) -> Engine:
        request = AttentionRequest(
            graph=graph,
            device=x.device,
            dtype=compute,
            has_edge_features=has_edge_features,
            has_relations=has_relations,
            need_weights=need_weights,
            dropout=self.dropout if self.training else 0.0,
        )
        return resolve_engine(self.engine, request)

    def _edge_terms(
        self,
        edge_attr: Tensor | None,
        edge_type: Tensor | None,
        num_edges: int,
        compute: torch.dtype,
    ) -> EdgeTerms | None:
        if edge_attr is None and edge_type is None:
            return None
        heads, dim = self.heads, self.head_dim
        key = value = rel_key = rel_value = None
        if edge_attr is not None:
            key = self.lin_edge_key(edge_attr).view(num_edges, heads, dim).to(compute)
            value = self.lin_edge_value(edge_attr).view(num_edges, heads, dim).to(compute)
        if edge_type is not None:
            rel_key = self.rel_key.view(-1, heads, dim).to(compute)  # (R, H, D)
            rel_value = self.rel_value.view(-1, heads, dim).to(compute)  # (R, H, D)
            edge_type = edge_type.long()
        return EdgeTerms(key, value, rel_key, rel_value, edge_type)

    # ---- input checks ---------------------------------------------------------------------
    def _check_inputs(
        self,
        x: Tensor,
        graph: Tensor | Pattern,
        edge_attr: Tensor | None,
        edge_type: Tensor | None,
    ) -> int:
        """Validate everything before any compute; return the number of edges."""
        if not isinstance(x, Tensor):
            raise TypeError(f"`x` must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"`x` must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(
                f"`x` must have shape [num_nodes, {self.in_channels}], got {list(x.shape)}"
            )
        num_nodes = x.size(0)

        if isinstance(graph, Pattern):
            if graph.num_nodes != num_nodes:
                raise ValueError(
                    f"`edge_index` pattern covers {graph.num_nodes} nodes but `x` has {num_nodes}"
                )
            num_edges = graph.num_edges if (edge_attr is not None or edge_type is not None) else -1
        elif isinstance(graph, Tensor):
            check_index_tensor("edge_index", graph)
            if graph.dim() != 2 or graph.size(0) != 2:
                raise ValueError(f"`edge_index` must have shape [2, E], got {list(graph.shape)}")
            check_same_device("edge_index", graph, x)
            num_edges = graph.size(1)
            if num_edges > 0 and not torch.compiler.is_compiling():  # value checks need a sync
                lo, hi = int(graph.min()), int(graph.max())
                if lo < 0:
                    raise ValueError(f"`edge_index` has a negative node index ({lo})")
                if hi >= num_nodes:
                    raise ValueError(
                        f"`edge_index` refers to node {hi} but `x` has only {num_nodes} nodes"
                    )
        else:
            raise TypeError(
                "`edge_index` must be an integer [2, E] tensor or a graphattn Pattern, "
                f"got {type(graph).__name__}"
            )

        if self.edge_dim is None:
            if edge_attr is not None:
                raise ValueError("`edge_attr` given, but the layer was built without `edge_dim`")
        elif edge_attr is None:
            raise ValueError(f"the layer was built with edge_dim={self.edge_dim}; pass `edge_attr`")
        else:
            if not isinstance(edge_attr, Tensor) or not edge_attr.is_floating_point():
                raise TypeError("`edge_attr` must be a floating-point tensor")
            if edge_attr.dim() != 2 or list(edge_attr.shape) != [num_edges, self.edge_dim]:
                raise ValueError(
                    f"`edge_attr` must have shape [{num_edges}, {self.edge_dim}] "
                    f"(one row per edge), got {list(edge_attr.shape)}"
                )
            check_same_device("edge_attr", edge_attr, x)

        if self.num_relations is None:
            if edge_type is not None:
                raise ValueError(
                    "`edge_type` given, but the layer was built without `num_relations`"
                )
        elif edge_type is None:
            raise ValueError(
                f"the layer was built with num_relations={self.num_relations}; pass `edge_type`"
            )
        else:
            check_index_tensor("edge_type", edge_type)
            if edge_type.dim() != 1 or edge_type.numel() != num_edges:
                raise ValueError(
                    f"`edge_type` must have shape [{num_edges}] (one per edge), "
                    f"got {list(edge_type.shape)}"
                )
            check_same_device("edge_type", edge_type, x)
            if num_edges > 0 and not torch.compiler.is_compiling():  # value checks need a sync
                lo, hi = int(edge_type.min()), int(edge_type.max())
                if lo < 0 or hi >= self.num_relations:
                    raise ValueError(
                        f"`edge_type` values must be in [0, {self.num_relations}), "
                        f"got range [{lo}, {hi}]"
                    )
        return num_edges

    def __repr__(self) -> str:
        extra = ""
        if self.edge_dim is not None:
            extra += f", edge_dim={self.edge_dim}"
        if self.num_relations is not None:
            extra += f", num_relations={self.num_relations}"
        if self.engine != "auto":
            extra += f", engine={self.engine!r}"
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}{extra})"
        )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}")
