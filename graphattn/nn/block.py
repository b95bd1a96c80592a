"""``GraphTransformerBlock``: attention and a feed-forward network with residuals and LayerNorm."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from .._checks import check_features, check_positive_int, check_probability
from ..conv import AttentionOutput, MultiHeadAttentionConv

__all__ = ["FeedForward", "GraphTransformerBlock"]

NORMS = ("pre", "post")


class FeedForward(nn.Module):
    """The position-wise MLP of a transformer: ``Linear -> GELU -> Linear -> Dropout``.

    Args:
        channels (int): input and output size.
        hidden_channels (int): hidden size (usually ``4 * channels``).
        dropout (float, optional): dropout on the output. (default: :obj:`0.0`)
    """

    def __init__(self, channels: int, hidden_channels: int, dropout: float = 0.0):
        super().__init__()
        self.lin1 = nn.Linear(channels, hidden_channels)
        self.act = nn.GELU()
        self.lin2 = nn.Linear(hidden_channels, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.lin2(self.act(self.lin1(x))))


class GraphTransformerBlock(nn.Module):
    r"""A transformer block whose attention runs over the incoming edges of each node.

    Pre-LN (``norm="pre"``, as GPT-2 and nanoGPT)::

        x = x + Dropout(Attention(LN1(x), graph))
        x = x + FFN(LN2(x))

    Post-LN (``norm="post"``, as the original Transformer)::

        x = LN1(x + Dropout(Attention(x, graph)))
        x = LN2(x + FFN(x))

    The FFN is ``Linear(C, ffn_ratio * C) -> GELU -> Linear -> Dropout``. A Pre-LN stack should
    end with a final LayerNorm (:class:`~graphattn.nn.GraphTransformer` adds it).

    With ``checkpoint=True`` the block keeps only its input for the backward pass and recomputes
    its activations there (:func:`torch.utils.checkpoint.checkpoint` with
    ``use_reentrant=False``; the random state is restored, so dropout masks are identical).
    Outputs and gradients equal those of ``checkpoint=False``; memory drops and time rises by
    about one extra forward of the block.

    Args:
        channels (int): model width :math:`d_\text{model}` (input and output size).
        heads (int): attention heads; must divide ``channels``.
        norm (str, optional): ``"pre"`` or ``"post"``. (default: :obj:`"pre"`)
        ffn_ratio (int or float, optional): FFN hidden size over ``channels``.
            (default: :obj:`4`)
        dropout (float, optional): dropout on the residual branches (after attention and
            after the FFN). (default: :obj:`0.0`)
        attention_dropout (float, optional): dropout on the attention weights; :obj:`None`
            uses ``dropout``. (default: :obj:`None`)
        checkpoint (bool, optional): recompute the block in the backward pass.
            (default: :obj:`False`)
        **attention_kwargs: passed to :class:`~graphattn.MultiHeadAttentionConv`
            (``edge_dim``, ``num_relations``, ``engine``, ``bias``).

    Shapes:
        - **input:** ``x`` :math:`(N, C)`, ``edge_index`` :math:`(2, E)` or a pattern over
          :math:`N` nodes, optional ``edge_attr`` :math:`(E, D_e)`, ``edge_type`` :math:`(E)`
        - **output:** :math:`(N, C)`

    >>> import torch
    >>> from graphattn import FullGraph
    >>> block = GraphTransformerBlock(16, 4)
    >>> block
    GraphTransformerBlock(16, heads=4, norm='pre')
    >>> block(torch.randn(5, 16), FullGraph(5)).shape
    torch.Size([5, 16])
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        *,
        norm: str = "pre",
        ffn_ratio: float = 4,
        dropout: float = 0.0,
        attention_dropout: float | None = None,
        checkpoint: bool = False,
        **attention_kwargs,
    ):
        check_positive_int("channels", channels)
        check_positive_int("heads", heads)
        if not isinstance(norm, str):
            raise TypeError(f"`norm` must be a str, got {type(norm).__name__}")
        if norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {norm!r}")
        if isinstance(ffn_ratio, bool) or not isinstance(ffn_ratio, (int, float)):
            raise TypeError(f"`ffn_ratio` must be a number, got {type(ffn_ratio).__name__}")
        hidden = int(round(channels * ffn_ratio))
        if ffn_ratio <= 0 or hidden < 1:
            raise ValueError(f"`ffn_ratio` must give >= 1 hidden unit, got {ffn_ratio}")
        check_probability("dropout", dropout)
        if attention_dropout is None:
            attention_dropout = dropout
        check_probability("attention_dropout", attention_dropout)
        if not isinstance(checkpoint, bool):
            raise TypeError(f"`checkpoint` must be a bool, got {type(checkpoint).__name__}")
        super().__init__()

        self.channels = channels
        self.heads = heads
        self.norm = norm
        self.ffn_ratio = ffn_ratio
        self.checkpoint = checkpoint

        self.norm1 = nn.LayerNorm(channels)
        self.attn = MultiHeadAttentionConv(
            channels, channels, heads, dropout=attention_dropout, **attention_kwargs
        )
        self.attn_dropout = nn.Dropout(dropout)  # on the residual branch
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = FeedForward(channels, hidden, dropout)

    def reset_parameters(self) -> None:
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        self.attn.reset_parameters()
        for lin in (self.mlp.lin1, self.mlp.lin2):
            lin.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index,
        *,
        edge_attr: Tensor | None = None,
        edge_type: Tensor | None = None,
        return_attention: bool = False,
        head_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, AttentionOutput]:
        """Run the block.

        Args:
            x: node features ``[N, channels]``.
            edge_index: the graph, in any form :class:`~graphattn.MultiHeadAttentionConv`
                takes (an ``[2, E]`` tensor, a pattern, an ``EdgeList``, ...).
            edge_attr: ``[E, edge_dim]`` edge features (blocks built with ``edge_dim``).
            edge_type: int ``[E]`` relation types (blocks built with ``num_relations``).
            return_attention: also return the attention layer's
                :class:`~graphattn.AttentionOutput`.
            head_mask: ``[H]`` factor per attention head (see the layer).
        """
        check_features("x", x, self)
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"`x` must have shape [N, {self.channels}], got {list(x.shape)}")
        args = (x, edge_index, edge_attr, edge_type, return_attention, head_mask)
        if self.checkpoint and torch.is_grad_enabled():
            return _checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)

    def _forward(
        self,
        x: Tensor,
        edge_index,
        edge_attr: Tensor | None,
        edge_type: Tensor | None,
        return_attention: bool,
        head_mask: Tensor | None,
    ) -> Tensor | tuple[Tensor, AttentionOutput]:
        def attend(h: Tensor):
            return self.attn(
                h, edge_index, edge_attr, edge_type, return_attention=return_attention,
                head_mask=head_mask,
            )  # fmt: skip

        if self.norm == "pre":
            res = attend(self.norm1(x))
            att, att_out = res if return_attention else (res, None)
            x = x + self.attn_dropout(att)
            x = x + self.mlp(self.norm2(x))
        else:
            res = attend(x)
            att, att_out = res if return_attention else (res, None)
            x = self.norm1(x + self.attn_dropout(att))
            x = self.norm2(x + self.mlp(x))
        return (x, att_out) if return_attention else x

    def __repr__(self) -> str:
        extra = ""
        if self.ffn_ratio != 4:
            extra += f", ffn_ratio={self.ffn_ratio}"
        if self.checkpoint:
            extra += ", checkpoint=True"
        name = type(self).__name__
        return f"{name}({self.channels}, heads={self.heads}, norm={self.norm!r}{extra})"
