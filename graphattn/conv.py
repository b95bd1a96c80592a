"""``MultiHeadAttentionConv``: multi-head self-attention as a PyG message-passing layer.

The layer owns the parameters and the PyG contract; what it delegates lives one module away:
argument and input checks in :mod:`graphattn._checks`, graph inputs in :mod:`graphattn._inputs`,
the stacked query/key/value projection and the edge terms in :mod:`graphattn._projection`, and
the attention itself in :mod:`graphattn.engines`, whose
:class:`~graphattn.engines.AttentionMessages` gives the layer its ``edge_update`` and
``message``: the ones the ``scatter`` reference runs.

**Deployment.** ``torch.export.export`` records the layer on edge lists (dynamic node and edge
counts included) with the default engine, and on patterns with ``strict=True`` (the default
non-strict mode is refused with a message saying so). ``torch.jit.trace`` records it on edge
lists, for other graphs as well (traces run the ``scatter`` engine). ``torch.jit.script`` is
not supported: it raises :data:`NOT_SCRIPTABLE`, which names ``torch.jit.trace``,
``torch.export`` and ``torch.compile`` instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear

from ._checks import (
    check_edge_attr,
    check_edge_type,
    check_flow,
    check_head_mask,
    check_in_channels,
    check_layer_options,
    check_logit_range,
    check_mha,
    check_node_features,
    want_weights,
)
from ._inputs import GraphInput, normalize_graph, weights_in_input_form
from ._projection import edge_terms, infer_lazy_sizes, project_qkv
from ._runtime import static_mode
from .engines import (
    AttentionCall,
    AttentionMessages,
    AttentionRequest,
    explain_engines,
    get_engine,
    joint_columns,
    resolve_engine,
)

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


class _Prepared(NamedTuple):
    """One call's inputs, checked and normalised (:meth:`MultiHeadAttentionConv._prepare`)."""

    x_src: Tensor
    x_dst: Tensor
    graph: GraphInput
    edge_attr: Tensor | None
    edge_type: Tensor | None
    request: AttentionRequest  # what the engines are asked to serve


class MultiHeadAttentionConv(AttentionMessages, MessagePassing):
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

    Deployment (``torch.export``, ``torch.jit.trace``; not ``torch.jit.script``): see
    :mod:`graphattn.conv`.

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
        in_src, in_dst = check_in_channels(in_channels)
        dropout, fill_value, root_weight = check_layer_options(
            out_channels, heads, dropout, bias, edge_dim, num_relations, add_self_loops,
            fill_value, root_weight, residual, beta, out_projection,
        )  # fmt: skip
        if engine != "auto":
            get_engine(engine)  # a TypeError or ValueError naming the registered engines
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
        for name in ("lin_edge_key", "lin_edge_value"):  # edge features' key and value terms
            edges = None if edge_dim is None else linear(edge_dim, out_channels, bias=False)
            self.register_module(name, edges)
        for name in ("rel_key", "rel_value"):  # relation embeddings, added to keys and values
            table = None if num_relations is None else torch.empty(num_relations, out_channels)
            self.register_parameter(name, None if table is None else nn.Parameter(table))
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

    def __prepare_scriptable__(self):  # torch.jit.script asks every submodule this first
        raise RuntimeError(NOT_SCRIPTABLE)  # what works instead, not a parse error on forward

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, **kwargs) -> MultiHeadAttentionConv:
        """A layer with the weights of ``mha``, equal to it on a complete graph with self-loops.

        ``mha`` must use one embedding size for query, key and value and no ``bias_k``/
        ``bias_v``/``add_zero_attn``. Extra keyword arguments (such as ``engine``) go to the
        constructor.
        """
        check_mha(mha)
        embed, bias = mha.embed_dim, mha.in_proj_bias is not None
        conv = cls(embed, embed, mha.num_heads, dropout=mha.dropout, bias=bias, **kwargs)
        conv = conv.to(device=mha.in_proj_weight.device, dtype=mha.in_proj_weight.dtype)
        lins = (conv.lin_query, conv.lin_key, conv.lin_value, conv.lin_out)
        weights = (*mha.in_proj_weight.chunk(3), mha.out_proj.weight)
        biases = (*mha.in_proj_bias.chunk(3), mha.out_proj.bias) if bias else (None,) * 4
        with torch.no_grad():
            for lin, weight, b in zip(lins, weights, biases, strict=True):
                lin.weight.copy_(weight)
                if b is not None:
                    lin.bias.copy_(b)
        return conv

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
        want = want_weights(return_attention, return_attention_weights)
        prep = self._prepare(x, edge_index, edge_attr, edge_type, size, need_weights=want)
        x_src, x_dst, graph, compute = prep.x_src, prep.x_dst, prep.graph, prep.request.dtype
        mask = check_head_mask(head_mask, self.heads, x_dst)
        engine = resolve_engine(self.engine, prep.request)
        # 16-bit rows stay 16-bit for an engine that reads them so (it accumulates in float32)
        rows = None if engine.half_rows and x_dst.dtype in _HALF else compute
        q, k, v = project_qkv(self, x_src, x_dst, rows, engine.strided_rows)  # (N, H, D) each
        terms = edge_terms(self, graph, prep.edge_attr, prep.edge_type, compute)
        if not static_mode():  # a value check needs a sync, and a branch that compile breaks on
            check_logit_range(q, k, terms, compute, joint_columns(q, k, v), v, (x_src, x_dst))

        call = AttentionCall(
            q, k, v, graph.graph, terms=terms, dropout=prep.request.dropout, need_weights=want,
            module=self,
        )  # fmt: skip
        with torch.autocast(x_dst.device.type, enabled=False):  # engines compute in `compute`
            out, weights = engine(call)  # (N_dst, H, D), (E', H)
        if mask is not None:
            out = out * mask.to(out.dtype).view(1, self.heads, 1)
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
        assert weights is not None  # PyG's spelling gets PyG's container for the input form
        pyg = bool(return_attention_weights)
        return out, AttentionOutput(
            *weights_in_input_form(edge_index, graph, weights, x_dst.device, pyg)
        )

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
        want = return_attention
        prep = self._prepare(x, edge_index, edge_attr, edge_type, size, need_weights=want)
        return resolve_engine(self.engine, prep.request).name

    def explain_engine(self, *args, return_attention: bool = False, **kwargs) -> str:
        """:meth:`engine_for`'s answer (same arguments), and what every registered engine
        says of these inputs (:func:`~graphattn.engines.explain_engines`)."""
        prep = self._prepare(*args, need_weights=return_attention, **kwargs)
        return explain_engines(prep.request, self.engine)

    def uses_message_passing(self) -> bool:
        """Whether a PyG hook or explainer needs this layer's ``propagate`` to run."""
        return bool(self.explain) or any(getattr(self, name, None) for name in _HOOKS)

    def _prepare(  # the arguments of `engine_for`
        self, x, edge_index, edge_attr=None, edge_type=None, size=None, *, need_weights=False
    ) -> _Prepared:
        """One call's inputs checked and normalised, for ``forward``, :meth:`engine_for` and
        :meth:`explain_engine`: features, graph, edge inputs, lazy sizes, engine request."""
        x_src, x_dst, homogeneous = check_node_features(x, size, self.in_channels, self)
        graph = normalize_graph(
            edge_index, x_src.size(0), x_dst.size(0), x_dst.device, flow=self.flow,
            add_self_loops=self.add_self_loops and homogeneous,
        )  # fmt: skip
        num_edges = graph.num_input_edges if graph.num_input_edges >= 0 else graph.graph.num_edges
        width = None if self.lin_edge_key is None else self.lin_edge_key.in_channels
        edge_attr = check_edge_attr(edge_attr, self.edge_dim, width, num_edges, x_dst)
        edge_type = check_edge_type(edge_type, self.num_relations, num_edges, x_dst)
        infer_lazy_sizes(
            ((self.lin_query, x_dst), (self.lin_key, x_src), (self.lin_value, x_src),
             (self.lin_skip, x_dst), (self.lin_edge_key, edge_attr),
             (self.lin_edge_value, edge_attr))
        )  # fmt: skip
        request = AttentionRequest(
            graph=graph.graph, device=x_dst.device,
            dtype=torch.float32 if x_dst.dtype in _HALF else x_dst.dtype,
            has_edge_features=edge_attr is not None, has_relations=edge_type is not None,
            need_weights=bool(need_weights), dropout=self.dropout if self.training else 0.0,
            message_passing=self.uses_message_passing(),
        )  # fmt: skip
        return _Prepared(x_src, x_dst, graph, edge_attr, edge_type, request)

    def __repr__(self) -> str:
        options = (  # (name, value, default): an option is shown when it is not its default
            ("edge_dim", self.edge_dim, None),
            ("num_relations", self.num_relations, None),
            ("add_self_loops", self.add_self_loops, True),
            ("fill_value", self.fill_value, 0.0),
            ("root_weight", self.root_weight, False),
            ("beta", self.lin_beta is not None, False),
            ("out_projection", self.out_projection, True),
            ("flow", self.flow, "source_to_target"),
            ("engine", self.engine, "auto"),
        )
        extra = "".join(
            f", {name}={value!r}"
            for name, value, default in options
            if not (type(value) is type(default) and value == default)
        )
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}{extra})"
        )
