"""``MultiHeadAttentionConv``: multi-head self-attention as a PyG message-passing layer."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.parameter import UninitializedParameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear

from ._checks import (
    check_bool,
    check_features,
    check_index_tensor,
    check_int,
    check_not_meta,
    check_positive_int,
    check_probability,
    check_same_device,
    static_int,
    tracing,
)
from ._inputs import (
    GraphInput,
    check_fill_value,
    check_flow,
    loop_edge_attr,
    loop_nodes,
    normalize_graph,
    weights_in_input_form,
)
from .engines._finite import static_mode
from .engines.base import AttentionRequest, EdgeTerms, Engine, joint_columns
from .engines.registry import get_engine, resolve_engine
from .engines.scatter import attention_alpha, attention_message

__all__ = ["AttentionOutput", "MultiHeadAttentionConv"]

_HALF = (torch.float16, torch.bfloat16)

NOT_SCRIPTABLE = (
    "MultiHeadAttentionConv cannot be compiled by torch.jit.script: its forward dispatches in "
    "Python on the graph's form (edge_index, EdgeIndex, sparse adj_t, patterns) and on the "
    "engine (numba custom ops, structures cached on the graph), which TorchScript cannot "
    "express. For a TorchScript module on edge lists use torch.jit.trace(model, (x, "
    "edge_index)) (it saves and loads with torch.jit.save / torch.jit.load); for a portable "
    "graph, torch.export.export(model, (x, edge_index)); in Python, torch.compile(model)."
)

# PyG's hook registries on MessagePassing: a registered hook needs the real message passing.
_HOOKS = (
    "_propagate_forward_pre_hooks",
    "_propagate_forward_hooks",
    "_message_forward_pre_hooks",
    "_message_forward_hooks",
    "_aggregate_forward_pre_hooks",
    "_aggregate_forward_hooks",
    "_message_and_aggregate_forward_pre_hooks",
    "_message_and_aggregate_forward_hooks",
    "_edge_update_forward_pre_hooks",
    "_edge_update_forward_hooks",
)


class AttentionOutput(NamedTuple):
    """Attention weights of one forward call, returned when ``return_attention=True``.

    A named tuple, so PyG's ``(out, (edge_index, alpha)) = conv(...,
    return_attention_weights=True)`` unpacking works as well.

    Attributes:
        edge_index: ``[2, E]`` edges the weights belong to, in the caller's orientation (its
            ``flow``): the caller's edges, or a pattern's materialized edges, followed by any
            self-loops the layer added. With PyG's spelling ``return_attention_weights=True``
            it takes the form PyG's layers give for the input: an ``EdgeIndex`` for an
            ``EdgeIndex``, and for a ``torch.sparse`` ``adj_t`` a sparse ``[N_dst, N_src, H]``
            tensor of the same layout holding the weights, as ``GATConv`` returns it.
        weights: ``[E, H]`` weights taken before dropout, in float32 or float64; for every
            target node and head they sum to 1 over its incoming edges. They carry gradients
            when the inputs do. (For a sparse ``adj_t``: the sparse tensor's values, in its
            storage order.)
    """

    edge_index: Tensor
    weights: Tensor


def _in_sizes(in_channels: object) -> tuple[int, int]:
    """``(source, target)`` input sizes from an int or a pair; ``-1`` means lazy."""
    if isinstance(in_channels, (tuple, list)):
        if len(in_channels) != 2:
            raise ValueError(f"`in_channels` as a pair must be (source, target), got {in_channels}")
        pair = tuple(in_channels)
    else:
        pair = (in_channels, in_channels)
    for value in pair:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"`in_channels` must be an int, -1 (lazy) or a pair of them, got {in_channels!r}"
            )
        if value <= 0 and value != -1:
            raise ValueError(f"`in_channels` must be > 0 or -1 (lazy), got {in_channels!r}")
    return pair  # type: ignore[return-value]


class MultiHeadAttentionConv(MessagePassing):
    r"""Multi-head self-attention over the incoming edges of every node.

    For a target node :math:`i` with incoming edges :math:`j \to i` and head :math:`h`:

    .. math::
        q_i = W_Q x_i, \quad k_{ij} = W_K x_j + e^K_{ij}, \quad v_{ij} = W_V x_j + e^V_{ij}

        \alpha_{ij}^h = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \Big( \tfrac{1}{\sqrt{d_h}} \langle q_i^h, k_{ij}^h \rangle \Big), \qquad
        x'_i = W_O \,\big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^h v_{ij}^h
            \;\big(+\, W_\text{skip} x_i\big)

    where :math:`e^K_{ij}, e^V_{ij}` are the optional edge-feature projections
    (``edge_dim``) plus the optional learned embeddings of the edge's relation type
    (``num_relations``), added to the edge's key and value as in PyG's
    :class:`~torch_geometric.nn.conv.TransformerConv` (here with separate key and value terms).
    On a complete graph with self-loops (:class:`~graphattn.FullGraph`) this is exactly
    :class:`torch.nn.MultiheadAttention` (see :meth:`from_torch`).

    .. note::
        ``out_channels`` is the **total** width :math:`d_\text{model}`, split into ``heads``
        heads of ``out_channels // heads`` channels, as in :class:`torch.nn.MultiheadAttention`;
        the parameter count does not depend on ``heads``, and the heads are mixed by the
        output projection :math:`W_O`. (PyG's ``TransformerConv`` and ``GATConv`` use
        ``out_channels`` per head and have no :math:`W_O`; ``out_projection=False`` gives
        their form.)

    **A node's own features.** As in PyG's ``GATConv``, ``add_self_loops=True`` (the default)
    lets every node attend to itself: existing self-loops of an edge list are removed and one
    per node is appended, with the edge features ``fill_value`` gives them (``GATConv``'s
    argument) and no relation term. Patterns already hold exactly one self-loop per node, so
    they are unchanged, and a bipartite input (``x = (x_src, x_dst)``) gets none.
    ``root_weight=True`` (``GATConv``'s ``residual=True``) adds ``TransformerConv``'s skip
    projection :math:`W_\text{skip} x_i` to the output, and ``beta=True`` its learned gate
    :math:`\beta_i x_r + (1 - \beta_i) x'_i`.

    Nodes with no incoming edge get a zero attention output (only the output bias remains)
    and zero gradient. Duplicate edges count as often as they appear. For float16 and
    bfloat16 inputs (and under autocast), logits, softmax and the weighted sum run in float32
    and the query is scaled before the dot product, so large activations do not overflow.

    Every PyG input form works: an integer ``edge_index``, a PyG ``EdgeIndex``, a
    ``torch.sparse`` or ``SparseTensor`` ``adj_t``, a graphattn
    :class:`~graphattn.patterns.Pattern` or :class:`~graphattn.patterns.EdgeList`, bipartite
    ``(x_src, x_dst)`` pairs (so ``to_hetero`` and ``HeteroConv`` work), ``flow``, PyG's
    hooks and explainers (calls that need them run on the ``scatter`` engine, the layer's own
    ``propagate``).

    **Deployment.** ``torch.export.export`` records the layer on edge lists (dynamic node and
    edge counts included) with the default engine, and on patterns with ``strict=True`` (the
    default non-strict mode is refused with a message saying so). ``torch.jit.trace`` records
    it on edge lists, for other graphs as well (traces run the ``scatter`` engine).
    ``torch.jit.script`` is not supported: it raises :data:`NOT_SCRIPTABLE`, which names
    ``torch.jit.trace``, ``torch.export`` and ``torch.compile`` instead.

    Args:
        in_channels (int or tuple): size of each input node feature, ``-1`` to infer it on
            the first call, or a ``(source, target)`` pair for bipartite graphs.
        out_channels (int): total output width, divisible by ``heads``.
        heads (int, optional): number of attention heads. (default: :obj:`1`)
        dropout (float, optional): dropout probability of the attention weights in
            training. (default: :obj:`0.0`)
        bias (bool, optional): learn additive biases in the projections.
            (default: :obj:`True`)
        edge_dim (int, optional): size of edge features, or ``-1`` to infer it on the first
            call; when set, ``forward`` needs ``edge_attr``. (default: :obj:`None`)
        num_relations (int, optional): number of relation types; when set, ``forward`` needs
            ``edge_type``. (default: :obj:`None`)
        add_self_loops (bool, optional): let every node attend to itself (see above).
            (default: :obj:`True`)
        fill_value (float or Tensor or str, optional): the edge features of the appended
            self-loops, with ``GATConv``'s meanings (PyG's ``add_self_loops``): a number or a
            ``[edge_dim]`` tensor for every loop, :obj:`None` for ones, or ``"mean"``,
            ``"add"``/``"sum"``, ``"max"``, ``"min"``, ``"mul"`` of the node's incoming edge
            features (its own self-loops left out). ``GATConv``'s default is ``"mean"``.
            (default: :obj:`0.0`)
        root_weight (bool, optional): add the skip projection of the target's own features.
            (default: :obj:`False`)
        residual (bool, optional): ``GATConv``'s spelling of ``root_weight=True``.
            (default: :obj:`False`)
        beta (bool, optional): gate the skip connection (needs ``root_weight``).
            (default: :obj:`False`)
        out_projection (bool, optional): mix the concatenated heads with the output
            projection :math:`W_O` (``lin_out``), as :class:`torch.nn.MultiheadAttention`
            does. ``False`` returns the heads side by side, as PyG's ``GATConv`` and
            ``TransformerConv`` do (``lin_out`` is then an ``Identity``); in their node
            classification recipes on small labelled sets this is the more accurate form
            (``benchmarks/citation.py``). (default: :obj:`True`)
        engine (str, optional): ``"auto"`` or one of the registered engines
            (``"scatter"``, ``"dense"``, ``"blocked"``, ``"fused"``). ``"auto"`` picks the
            fastest engine that supports the call. (default: :obj:`"auto"`)
        **kwargs: passed to :class:`~torch_geometric.nn.conv.MessagePassing` (``flow``, ...).

    Shapes:
        - **input:** node features :math:`(N, F_{in})` or :math:`((N_s, F_s), (N_t, F_t))`;
          ``edge_index`` :math:`(2, E)` (or another graph form above); optional
          ``edge_attr`` :math:`(E, D_e)` (or :math:`(E)` when ``edge_dim=1``), ``edge_type``
          :math:`(E)` and ``head_mask`` :math:`(H)`
        - **output:** node features :math:`(N_t, F_{out})`, and with ``return_attention=True``
          an :class:`AttentionOutput` with weights :math:`(E', H)`

    >>> import torch
    >>> from graphattn import FullGraph, MultiHeadAttentionConv
    >>> conv = MultiHeadAttentionConv(16, 32, heads=4)
    >>> conv
    MultiHeadAttentionConv(16, 32, heads=4)
    >>> conv(torch.randn(5, 16), FullGraph(5)).shape
    torch.Size([5, 32])
    """

    # The arguments of `propagate` / `edge_updater`, for PyG's generated (jinja) versions.
    # (typing.Optional, not `X | None`: PyG renders these into generated source.)
    propagate_type = {"value": Tensor, "alpha": Tensor, "edge_value": Optional[Tensor]}  # noqa: UP045
    edge_updater_type = {  # noqa: UP045
        "query": Tensor,
        "key": Tensor,
        "edge_key": Optional[Tensor],  # noqa: UP045
        "edge_mask": Optional[Tensor],  # noqa: UP045
    }

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        edge_dim: int | None = None,
        num_relations: int | None = None,
        add_self_loops: bool = True,
        fill_value: float | Tensor | str | None = 0.0,
        root_weight: bool = False,
        residual: bool = False,
        beta: bool = False,
        out_projection: bool = True,
        engine: str = "auto",
        **kwargs,
    ):
        in_src, in_dst = _in_sizes(in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("heads", heads)
        if out_channels % heads != 0:
            raise ValueError(
                f"`heads` ({heads}) must divide `out_channels` ({out_channels}): "
                "out_channels is the total width, split across heads"
            )
        dropout = check_probability("dropout", dropout)
        check_bool("bias", bias)
        if edge_dim is not None and not (type(edge_dim) is int and edge_dim == -1):  # -1: lazy
            check_int("edge_dim", edge_dim)
            if edge_dim <= 0:
                raise ValueError(f"`edge_dim` must be > 0 or -1 (lazy), got {edge_dim}")
        if num_relations is not None:
            check_positive_int("num_relations", num_relations)
        check_bool("add_self_loops", add_self_loops)
        fill_value = check_fill_value(fill_value)
        check_bool("root_weight", root_weight)
        root_weight = root_weight or check_bool("residual", residual)  # GATConv's spelling
        check_bool("beta", beta)
        check_bool("out_projection", out_projection)
        if beta and not root_weight:
            raise ValueError(
                "`beta=True` gates the skip connection: it needs `root_weight=True` "
                "(or GATConv's spelling, `residual=True`)"
            )
        _check_engine_name(engine)
        check_flow(kwargs.get("flow", "source_to_target"))
        if kwargs.setdefault("aggr", "add") not in ("add", "sum"):  # what every engine computes
            raise ValueError(f"`aggr` must be 'add' (attention sums), got {kwargs['aggr']!r}")
        super().__init__(node_dim=0, **kwargs)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.head_dim = out_channels // heads
        self.dropout = dropout
        self.edge_dim = edge_dim
        self.num_relations = num_relations
        self.add_self_loops = add_self_loops
        self.fill_value = fill_value
        self.root_weight = root_weight
        self.out_projection = out_projection
        self.engine = engine

        def linear(n_in: int, n_out: int, bias: bool = bias) -> Linear:
            return Linear(
                n_in, n_out, bias=bias, weight_initializer="glorot", bias_initializer="zeros"
            )

        self.lin_query = linear(in_dst, out_channels)
        self.lin_key = linear(in_src, out_channels)
        self.lin_value = linear(in_src, out_channels)
        # without W_O the heads' outputs are concatenated as they are (PyG's layers); an
        # Identity keeps `lin_out` hookable (analysis.head_outputs captures its input)
        self.lin_out = linear(out_channels, out_channels) if out_projection else nn.Identity()
        if edge_dim is not None:
            self.lin_edge_key = linear(edge_dim, out_channels, bias=False)
            self.lin_edge_value = linear(edge_dim, out_channels, bias=False)
        else:
            self.register_module("lin_edge_key", None)
            self.register_module("lin_edge_value", None)
        if num_relations is not None:
            self.rel_key = nn.Parameter(torch.empty(num_relations, out_channels))
            self.rel_value = nn.Parameter(torch.empty(num_relations, out_channels))
        else:
            self.register_parameter("rel_key", None)
            self.register_parameter("rel_value", None)
        self.lin_skip = linear(in_dst, out_channels) if root_weight else None
        self.lin_beta = linear(3 * out_channels, 1, bias=False) if beta else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (
            self.lin_query, self.lin_key, self.lin_value, self.lin_out, self.lin_edge_key,
            self.lin_edge_value, self.lin_skip, self.lin_beta,
        ):  # fmt: skip
            if isinstance(lin, Linear):
                lin.reset_parameters()
        for emb in (self.rel_key, self.rel_value):
            if emb is not None:
                nn.init.normal_(emb, std=self.out_channels**-0.5)

    def __prepare_scriptable__(self):
        # torch.jit.script calls this on every submodule first: a clear refusal that names
        # what works instead, rather than TorchScript's parse error on `forward`
        raise RuntimeError(NOT_SCRIPTABLE)

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

    # ---- PyG message passing (the `scatter` engine runs these through `propagate`) ---------
    def edge_update(  # type: ignore[override]
        self,
        query_i: Tensor,
        key_j: Tensor,
        edge_key: Tensor | None,
        edge_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        return attention_alpha(query_i, key_j, edge_key, edge_mask, index, ptr, size_i)

    def message(self, value_j: Tensor, alpha: Tensor, edge_value: Tensor | None) -> Tensor:  # type: ignore[override]
        return attention_message(value_j, alpha, edge_value)

    def explain_message(self, inputs: Tensor, dim_size: int | None) -> Tensor:
        """PyG's explainers: scale every message by the (sigmoid of the) explained edge mask.

        The mask covers the caller's edges; the self-loops this layer appends after them
        (``add_self_loops``) are kept unexplained (factor 1), as in PyG's own layers.
        """
        edge_mask = self._edge_mask
        if edge_mask is None:
            raise ValueError("no `edge_mask` to explain; set it with PyG's explain utilities")
        if self._apply_sigmoid:
            edge_mask = edge_mask.sigmoid()
        extra = inputs.size(0) - edge_mask.size(0)
        if extra < 0:
            raise ValueError(
                f"the explained `edge_mask` has {edge_mask.size(0)} entries but the layer "
                f"passes {inputs.size(0)} messages"
            )
        if extra:
            edge_mask = torch.cat([edge_mask, edge_mask.new_ones(extra)])
        return inputs * edge_mask.view(-1, *([1] * (inputs.dim() - 1)))

    # ---- forward --------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        size: tuple[int, int] | None = None,
        *,
        return_attention: bool = False,
        return_attention_weights: bool | None = None,
        head_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, AttentionOutput]:
        """Attend over incoming edges.

        Args:
            x: node features ``[N, in_channels]``, or ``(x_src, x_dst)`` for a bipartite
                graph (queries come from ``x_dst``, keys and values from ``x_src``).
            edge_index: the graph: an integer ``[2, E]`` (source, target) tensor, a PyG
                ``EdgeIndex``, a ``torch.sparse``/``SparseTensor`` ``adj_t``, a
                :class:`~graphattn.patterns.Pattern` or an
                :class:`~graphattn.patterns.EdgeList`.
            edge_attr: ``[E, edge_dim]`` edge features (layers built with ``edge_dim``;
                ``[E]`` when ``edge_dim=1``), in the order of the graph's edges.
            edge_type: int ``[E]`` relation types in ``[0, num_relations)`` (layers built with
                ``num_relations``).
            size: ``(N_src, N_dst)``, checked against ``x`` when given.
            return_attention: also return an :class:`AttentionOutput` (``[2, E']`` edges).
            return_attention_weights: PyG's spelling of ``return_attention``, with the edges
                in PyG's form for the input (see :class:`AttentionOutput`).
            head_mask: ``[H]`` factor per head on its attention output (``0`` removes a
                head, ``1`` keeps it), honoured by every engine.
        """
        want = _want_weights(return_attention, return_attention_weights)
        x_src, x_dst, homogeneous = self._split_x(x, size)
        graph = normalize_graph(
            edge_index, x_src.size(0), x_dst.size(0), x_dst.device, flow=self.flow,
            add_self_loops=self.add_self_loops and homogeneous,
        )  # fmt: skip
        edge_attr, edge_type = self._check_edge_inputs(graph, x_dst, edge_attr, edge_type)
        self._materialize(x_src, x_dst, edge_attr)
        mask = self._check_head_mask(head_mask, x_dst)
        heads, dim = self.heads, self.head_dim
        compute = torch.float32 if x_dst.dtype in _HALF else x_dst.dtype

        engine = self._resolve(graph, x_dst.device, compute, edge_attr, edge_type, want)
        # 16-bit rows stay 16-bit for an engine that reads them so (it accumulates in float32)
        rows = q_dtype = None if engine.half_rows and x_dst.dtype in _HALF else compute

        # the 1/sqrt(d) scale is folded into the query projection's (small) weight and bias,
        # so no extra pass over the [N, H, D] queries, forward or backward
        q, k, v = self._project(x_src, x_dst, engine.strided_rows)
        q = _cast(q.view(-1, heads, dim), q_dtype)  # (N_dst, H, D), scaled
        k = _cast(k.view(-1, heads, dim), rows)  # (N_src, H, D)
        v = _cast(v.view(-1, heads, dim), rows)  # (N_src, H, D)
        terms = self._edge_terms(graph, edge_attr, edge_type, compute)
        if not static_mode():  # a value check needs a sync, and a branch that compile breaks on
            _check_logit_range(q, k, terms, compute, joint_columns(q, k, v), v, (x_src, x_dst))

        with torch.autocast(x_dst.device.type, enabled=False):  # engines compute in `compute`
            out, weights = engine(
                q, k, v, graph.graph, terms=terms, dropout=self.dropout if self.training else 0.0,
                need_weights=want, module=self,
            )  # fmt: skip  # (N_dst, H, D), (E', H)
        if mask is not None:
            out = out * mask.to(out.dtype).view(1, heads, 1)
        out = self.lin_out(out.to(x_dst.dtype).reshape(-1, self.out_channels))  # (N_dst, C)
        if self.lin_skip is not None:
            skip = self.lin_skip(x_dst)  # (N_dst, C)
            if self.lin_beta is not None:
                gate = self.lin_beta(torch.cat([out, skip, out - skip], dim=-1)).sigmoid()
                out = gate * skip + (1 - gate) * out
            else:
                out = out + skip
        if not want:
            return out
        assert weights is not None
        if return_attention_weights:  # PyG's spelling: PyG's container for the input form
            return out, AttentionOutput(
                *weights_in_input_form(edge_index, graph, weights, x_dst.device)
            )
        return out, AttentionOutput(graph.caller_edge_index(x_dst.device), weights)

    def engine_for(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        size: tuple[int, int] | None = None,
        *,
        return_attention: bool = False,
    ) -> str:
        """The name of the engine that ``forward`` would run for these inputs."""
        x_src, x_dst, homogeneous = self._split_x(x, size)
        graph = normalize_graph(
            edge_index, x_src.size(0), x_dst.size(0), x_dst.device, flow=self.flow,
            add_self_loops=self.add_self_loops and homogeneous,
        )  # fmt: skip
        edge_attr, edge_type = self._check_edge_inputs(graph, x_dst, edge_attr, edge_type)
        self._materialize(x_src, x_dst, edge_attr)
        compute = torch.float32 if x_dst.dtype in _HALF else x_dst.dtype
        return self._resolve(
            graph, x_dst.device, compute, edge_attr, edge_type, return_attention
        ).name

    def uses_message_passing(self) -> bool:
        """Whether a PyG hook or explainer needs this layer's ``propagate`` to run."""
        return bool(self.explain) or any(getattr(self, name, None) for name in _HOOKS)

    def _resolve(
        self,
        graph: GraphInput,
        device: torch.device,
        compute: torch.dtype,
        edge_attr: Tensor | None,
        edge_type: Tensor | None,
        need_weights: bool,
    ) -> Engine:
        request = AttentionRequest(
            graph=graph.graph, device=device, dtype=compute,
            has_edge_features=edge_attr is not None, has_relations=edge_type is not None,
            need_weights=need_weights, dropout=self.dropout if self.training else 0.0,
            message_passing=self.uses_message_passing(),
        )  # fmt: skip
        return resolve_engine(self.engine, request)

    # ---- inputs ---------------------------------------------------------------------------
    def _project(self, x_src: Tensor, x_dst: Tensor, strided: bool) -> tuple[Tensor, ...]:
        """``(q, k, v)`` as ``[N, C]`` rows; ``q`` is scaled by ``1 / sqrt(D)``, folded into the
        query projection's (small) weight and bias, so no extra pass over the queries.

        When ``x_src is x_dst`` and the engine reads row-strided rows (``strided``), the three
        projections are one matrix product with the weights stacked (``[N, 3C]`` columns, q,
        k, v views into it): one wide product, and in the backward one product with a
        ``3C``-deep inner dimension instead of three ``C``-deep ones summed. Only while
        ``lin_key`` and ``lin_value`` are plain PyG ``Linear`` modules without forward hooks
        (pruning, for one, recomputes ``weight`` in a pre-hook; an adapter may replace the
        module): otherwise they are called as modules.
        """
        scale = 1.0 / math.sqrt(self.head_dim)
        lq, lk, lv = self.lin_query, self.lin_key, self.lin_value
        if strided and x_src is x_dst and _plain_linear(lk) and _plain_linear(lv):
            weight = torch.cat([lq.weight * scale, lk.weight, lv.weight])  # (3C, C_in)
            bias = None if lq.bias is None else torch.cat([lq.bias * scale, lk.bias, lv.bias])
            return _split_columns(F.linear(x_dst, weight, bias), self.out_channels)
        bias_q = None if lq.bias is None else lq.bias * scale
        return F.linear(x_dst, lq.weight * scale, bias_q), lk(x_src), lv(x_src)

    def _split_x(self, x: object, size: tuple[int, int] | None) -> tuple[Tensor, Tensor, bool]:
        """``(x_src, x_dst, homogeneous)`` after checking types, shapes and dtypes."""
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(t, Tensor) for t in x):
            x_src, x_dst = x
            homogeneous = False
        elif not isinstance(x, Tensor):
            raise TypeError(
                "`x` must be a torch.Tensor or an (x_src, x_dst) pair of tensors, "
                f"got {type(x).__name__}"
            )
        else:
            x_src = x_dst = x  # type: ignore[assignment]
            homogeneous = True
        in_src, in_dst = _in_sizes(self.in_channels)
        names = ("x", "x") if homogeneous else ("x[0]", "x[1]")
        for name, t, width in ((names[0], x_src, in_src), (names[1], x_dst, in_dst)):
            check_features(name, t, self)  # a floating tensor in the parameters' dtype
            check_not_meta(name, t)
            if t.dim() != 2 or (width != -1 and static_int(t.size(1)) != width):
                expected = "in_channels" if width == -1 else width
                raise ValueError(
                    f"`{name}` must have shape [num_nodes, {expected}], got {list(t.shape)}"
                )
        if x_src.device != x_dst.device or x_src.dtype != x_dst.dtype:
            raise ValueError(
                "`x[0]` and `x[1]` must share device and dtype, got "
                f"{x_src.device}/{x_src.dtype} and {x_dst.device}/{x_dst.dtype}"
            )
        weight = self.lin_query.weight
        if x_dst.device != weight.device:
            raise ValueError(f"`x` is on {x_dst.device} but the layer is on {weight.device}")
        if size is not None:
            if (
                not isinstance(size, (tuple, list))
                or len(size) != 2
                or tuple(size) != (x_src.size(0), x_dst.size(0))
            ):
                raise ValueError(
                    f"`size` must be (N_src, N_dst) = ({x_src.size(0)}, {x_dst.size(0)}) as "
                    f"given by `x`, got {size!r}"
                )
        return x_src, x_dst, homogeneous

    def _materialize(self, x_src: Tensor, x_dst: Tensor, edge_attr: Tensor | None) -> None:
        """Infer lazy (``-1``) input sizes on the first call (PyG's ``Linear`` does it)."""
        lazy = [
            (lin, inp)
            for lin, inp in (
                (self.lin_query, x_dst),
                (self.lin_key, x_src),
                (self.lin_value, x_src),
                (self.lin_skip, x_dst),
                (self.lin_edge_key, edge_attr),
                (self.lin_edge_value, edge_attr),
            )  # fmt: skip
            if lin is not None
            and inp is not None
            and isinstance(getattr(lin, "weight", None), UninitializedParameter)
        ]
        if lazy:
            with torch.no_grad():
                for lin, inp in lazy:
                    lin(inp[:0])

    def _check_edge_inputs(
        self, graph: GraphInput, x: Tensor, edge_attr: Tensor | None, edge_type: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        num_edges = graph.num_input_edges if graph.num_input_edges >= 0 else graph.graph.num_edges
        if self.edge_dim is None:
            if edge_attr is not None:
                raise ValueError("`edge_attr` given, but the layer was built without `edge_dim`")
        elif edge_attr is None:
            raise ValueError(f"the layer was built with edge_dim={self.edge_dim}; pass `edge_attr`")
        else:
            if not isinstance(edge_attr, Tensor) or not edge_attr.is_floating_point():
                raise TypeError("`edge_attr` must be a floating-point tensor")
            width = self.lin_edge_key.in_channels  # -1 until a lazy layer's first call
            if edge_attr.dim() == 1 and width in (1, -1):
                edge_attr = edge_attr.unsqueeze(-1)  # (E,) -> (E, 1)
            if edge_attr.dim() != 2 or (
                static_int(edge_attr.size(0)) != num_edges
                or width not in (-1, static_int(edge_attr.size(1)))
            ):
                expected = "edge_dim" if width == -1 else width
                raise ValueError(
                    f"`edge_attr` must have shape [{num_edges}, {expected}] "
                    f"(one row per edge), got {list(edge_attr.shape)}"
                )
            check_same_device("edge_attr", edge_attr, x)
            if edge_attr.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
                raise TypeError(
                    f"`edge_attr` is {edge_attr.dtype} but `x` is {x.dtype}; use one dtype"
                )
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
            if edge_type.dim() != 1 or static_int(edge_type.size(0)) != num_edges:
                raise ValueError(
                    f"`edge_type` must have shape [{num_edges}] (one per edge), "
                    f"got {list(edge_type.shape)}"
                )
            check_same_device("edge_type", edge_type, x)
            if num_edges > 0 and not tracing():  # value checks need a sync
                lo, hi = int(edge_type.min()), int(edge_type.max())
                if lo < 0 or hi >= self.num_relations:
                    raise ValueError(
                        f"`edge_type` values must be in [0, {self.num_relations}), "
                        f"got range [{lo}, {hi}]"
                    )
            edge_type = edge_type.long()
        return edge_attr, edge_type

    def _check_head_mask(self, head_mask: Tensor | None, x: Tensor) -> Tensor | None:
        if head_mask is None:
            return None
        if not isinstance(head_mask, Tensor):
            raise TypeError(f"`head_mask` must be a torch.Tensor, got {type(head_mask).__name__}")
        if head_mask.shape != (self.heads,):
            raise ValueError(
                f"`head_mask` must have shape [{self.heads}] (one factor per head), "
                f"got {list(head_mask.shape)}"
            )
        if head_mask.is_complex():
            raise TypeError("`head_mask` must be real or bool")
        check_same_device("head_mask", head_mask, x)
        return head_mask

    def _edge_terms(
        self,
        graph: GraphInput,
        edge_attr: Tensor | None,
        edge_type: Tensor | None,
        compute: torch.dtype,
    ) -> EdgeTerms | None:
        """Key and value terms per engine edge: the caller's edges, then zero terms (and a
        relation of their own) for the self-loops the layer appended; and the mask of the
        caller's self-loops that those replace."""
        if edge_attr is None and edge_type is None and graph.mask is None:
            return None
        heads, dim = self.heads, self.head_dim
        loops = graph.num_loops
        key = value = rel_key = rel_value = None
        if edge_attr is not None:
            if loops:  # GATConv's fill_value
                edge_attr = torch.cat(
                    [edge_attr, loop_edge_attr(graph, edge_attr, self.fill_value)]
                )
            key = self.lin_edge_key(edge_attr).view(-1, heads, dim).to(compute)  # (E', H, D)
            value = self.lin_edge_value(edge_attr).view(-1, heads, dim).to(compute)
        if edge_type is not None:
            rel_key = self.rel_key.to(compute)  # (R, C)
            rel_value = self.rel_value.to(compute)
            if loops:  # an extra all-zero relation for the appended self-loops
                none = torch.full_like(loop_nodes(graph, edge_type.size(0)), self.num_relations)
                edge_type = torch.cat([edge_type, none])
                rel_key = torch.cat([rel_key, rel_key.new_zeros(1, rel_key.size(1))])
                rel_value = torch.cat([rel_value, rel_value.new_zeros(1, rel_value.size(1))])
            rel_key = rel_key.view(-1, heads, dim)  # (R, H, D)
            rel_value = rel_value.view(-1, heads, dim)
        return EdgeTerms(key, value, rel_key, rel_value, edge_type, graph.mask)

    def __repr__(self) -> str:
        extra = ""
        if self.edge_dim is not None:
            extra += f", edge_dim={self.edge_dim}"
        if self.num_relations is not None:
            extra += f", num_relations={self.num_relations}"
        if not self.add_self_loops:
            extra += ", add_self_loops=False"
        if not (isinstance(self.fill_value, float) and self.fill_value == 0.0):
            extra += f", fill_value={self.fill_value!r}"
        if self.root_weight:
            extra += ", root_weight=True"
        if self.lin_beta is not None:
            extra += ", beta=True"
        if not self.out_projection:
            extra += ", out_projection=False"
        if self.flow != "source_to_target":
            extra += f", flow={self.flow!r}"
        if self.engine != "auto":
            extra += f", engine={self.engine!r}"
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}{extra})"
        )


class _SplitColumns(torch.autograd.Function):
    """``t.split(width, dim=1)`` whose backward skips the concatenation of the gradients
    when they already are one ``[N, 3C]`` tensor (:func:`~.engines.base.joint_columns`), as
    the ``blocked`` engine writes them: a pass over ``N x 3C`` values saved per step."""

    @staticmethod
    def forward(t, width):
        return t.split(width, dim=1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):  # unused outputs' gradients come materialized as zeros
        joint = joint_columns(*grads)
        return (torch.cat(grads, dim=1) if joint is None else joint), None


def _split_columns(t: Tensor, width: int) -> tuple[Tensor, ...]:
    """The q, k, v column views of a stacked projection (see :class:`_SplitColumns`)."""
    if static_mode() or not (torch.is_grad_enabled() and t.requires_grad):
        return t.split(width, dim=1)
    return _SplitColumns.apply(t, width)


def _plain_linear(module: nn.Module) -> bool:
    """Whether calling ``module`` is exactly ``F.linear`` with its weight and bias: a PyG
    ``Linear`` (not a subclass) with no forward hooks of its own or global ones."""
    from torch.nn.modules import module as torch_module

    return (
        type(module) is Linear
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and not torch_module._global_forward_hooks
        and not torch_module._global_forward_pre_hooks
    )


def _cast(t: Tensor, dtype: torch.dtype | None) -> Tensor:
    return t if dtype is None else t.to(dtype)


def _largest(*tensors: Tensor | None) -> float:
    """The sum of the largest absolute values of ``tensors`` (0 for none; NaN or inf if one is
    there)."""
    largest = 0.0
    for t in tensors:
        if t is not None and t.numel() > 0:
            t = t.detach()
            if t.is_contiguous():
                lo, hi = torch.aminmax(t)  # one pass (it copies a strided tensor first)
            else:
                lo, hi = t.amin(), t.amax()
            largest += max(-float(lo), float(hi))
    return largest


def _check_logit_range(
    q: Tensor,
    k: Tensor,
    terms: EdgeTerms | None,
    compute: torch.dtype,
    joint: Tensor | None = None,
    v: Tensor | None = None,
    x: tuple[Tensor, Tensor] | None = None,
) -> None:
    """A ``ValueError`` when finite inputs could give attention logits beyond the compute
    dtype's range, where every engine (the reference too) would return NaN.

    ``|<q_i, k_j + e_ij>| <= D max|q| (max|k| + max|e|)`` bounds every logit (one pass over
    ``q`` and ``k``); only when that bound is exceeded is the exact per-head Cauchy-Schwarz
    bound ``max_i |q_i^h| max_j |k_j^h + e^h|`` computed, in float64. Non-finite inputs are
    left to the engines (a NaN or inf reaches exactly the nodes that attend to it).

    ``joint``: the stacked projection ``[N, 3C]`` whose columns ``q`` and ``k`` are, if they
    are: its largest value bounds both maxima in one contiguous pass; only when that is not
    enough to pass (or is not finite) are ``q`` and ``k`` scanned apart.

    ``v``, ``x``: the values and the features ``(x_src, x_dst)``. A float16 projection (float16
    features, or float16 autocast) of finite features can overflow float16's range (65504) on
    its own; when ``q``, ``k`` or ``v`` are then not finite while the features are, that is
    the overflow, and a ``ValueError`` says so.
    """
    if q.numel() == 0 or k.numel() == 0:
        return
    limit = torch.finfo(compute).max  # 16-bit rows are computed in float32
    key_terms = () if terms is None else (terms.key, terms.rel_key)
    if joint is not None:
        both = _largest(joint)
        if math.isfinite(both) and both * (both + _largest(*key_terms)) * q.size(-1) < limit:
            return
    q_max, k_max = _largest(q), _largest(k, *key_terms)
    half = x is not None and v is not None and _float16_projection(x[1])
    if not (math.isfinite(q_max) and math.isfinite(k_max)):
        if half:
            _check_projection_overflow(q, k, v, x)
        return  # non-finite values: their documented semantics, not an overflow
    if half and not math.isfinite(_largest(v)):  # v alone can overflow too
        _check_projection_overflow(q, k, v, x)
    if q_max * k_max * q.size(-1) < limit:
        return
    q_norm = torch.linalg.vector_norm(q.detach().double(), dim=-1).amax(0)  # (H,)
    k_norm = torch.linalg.vector_norm(k.detach().double(), dim=-1).amax(0)
    for t in key_terms:
        if t is not None and t.numel() > 0:
            k_norm = k_norm + torch.linalg.vector_norm(t.detach().double(), dim=-1).amax(0)
    bound = float((q_norm * k_norm).max())
    if bound >= limit:
        raise ValueError(
            f"`x` gives attention logits up to about {bound:.3g}, beyond the range of "
            f"{compute} ({limit:.3g}), where the softmax would return NaN: normalise the "
            "features (a LayerNorm before the layer), or run the layer in float64 "
            "(`conv.double()`)"
        )


def _float16_projection(x: Tensor) -> bool:
    """Whether the projections of ``x`` run in float16 (float16 features, or autocast)."""
    device = x.device.type
    return x.dtype == torch.float16 or (
        torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16
    )


def _check_projection_overflow(q: Tensor, k: Tensor, v: Tensor, x: tuple[Tensor, Tensor]) -> None:
    """A ``ValueError`` when finite features have query/key/value projections that are not
    finite: a float16 projection overflowed (beyond 65504), and every row attending to them
    would be NaN. (Non-finite edge terms or features keep their documented semantics.)"""
    if all(bool(torch.isfinite(t.detach()).all()) for t in (q, k, v)):
        return  # the non-finite values come from the edge terms
    x_src, x_dst = x
    for t in (x_src,) if x_src is x_dst else (x_src, x_dst):
        if not bool(torch.isfinite(t.detach()).all()):
            return  # non-finite features: their documented semantics
    raise ValueError(
        "`x` is finite but its float16 query/key/value projections are not: they exceed the "
        f"range of float16 ({torch.finfo(torch.float16).max:.0f}); normalise the features (a "
        "LayerNorm before the layer), or run the layer in float32 or bfloat16"
    )


def _check_engine_name(engine: object) -> None:
    if not isinstance(engine, str):
        raise TypeError(f"`engine` must be a str, got {type(engine).__name__}")
    if engine != "auto":
        get_engine(engine)  # raises a ValueError naming the registered engines


def _want_weights(return_attention: object, return_attention_weights: object) -> bool:
    check_bool("return_attention", return_attention)
    if return_attention_weights is None:
        return return_attention  # type: ignore[return-value]
    check_bool("return_attention_weights", return_attention_weights)
    if return_attention and not return_attention_weights:
        raise ValueError("`return_attention=True` contradicts `return_attention_weights=False`")
    return bool(return_attention_weights) or bool(return_attention)
