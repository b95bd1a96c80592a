"""Heads as units: masking, importance by ablation, pruning (private); the orthogonality
penalty, a regulariser that :class:`~graphattn.nn.GraphTransformer` uses, lives in
:mod:`graphattn.nn.regularization` and is exported here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .._checks import check_int
from ..conv import MultiHeadAttentionConv
from ..nn.regularization import orthogonality_penalty
from ._similarity import attention_layers

__all__ = ["head_importance", "mask_heads", "orthogonality_penalty", "top_heads_mask"]


def _layers_and_heads(module: nn.Module) -> tuple[list[MultiHeadAttentionConv], int]:
    layers = attention_layers(module)
    if not layers:
        raise ValueError("`model` holds no MultiHeadAttentionConv layer")
    heads = {conv.heads for conv in layers}
    if len(heads) != 1:
        raise ValueError(f"every attention layer must have the same number of heads, got {heads}")
    return layers, heads.pop()


def _check_mask(name: str, mask: Tensor, shape: tuple[int, int]) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(mask).__name__}")
    if mask.is_complex():
        raise TypeError(f"`{name}` must be real or bool")
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"`{name}` must have shape {list(shape)} (attention layers x heads), "
            f"got {list(mask.shape)}"
        )
    return mask


@contextmanager
def mask_heads(model: nn.Module, head_mask: Tensor) -> Iterator[nn.Module]:
    r"""Within the block, every attention layer of ``model`` runs with ``head_mask``.

    ``head_mask[l, h]`` multiplies head :math:`h`'s attention output in the :math:`l`-th
    :class:`~graphattn.MultiHeadAttentionConv` of ``model`` (order of
    :func:`attention_layers`) before the output projection: ``0`` removes the head, ``1``
    keeps it. It is passed as the layer's own ``head_mask`` argument (multiplied with any
    mask the caller passes), so every engine honours it; works for any model built from
    these layers.

    >>> import torch
    >>> from graphattn import FullGraph
    >>> from graphattn.nn import GraphTransformer, GraphTransformerConfig
    >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, channels=8, heads=2))
    >>> x, g, mask = torch.randn(5, 3), FullGraph(5), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> with mask_heads(model, mask):
    ...     a = model(x, g).node
    >>> torch.allclose(a, model(x, g, head_mask=mask).node)
    True
    """
    layers, heads = _layers_and_heads(model)
    _check_mask("head_mask", head_mask, (len(layers), heads))
    handles = []

    def inject(row: Tensor):
        def hook(_, args, kwargs):
            given = kwargs.get("head_mask")
            kwargs["head_mask"] = row if given is None else given * row
            return args, kwargs

        return hook

    try:
        for conv, row in zip(layers, head_mask, strict=True):
            handles.append(conv.register_forward_pre_hook(inject(row), with_kwargs=True))
        yield model
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def head_importance(
    model: nn.Module,
    data,
    loss_fn: Callable[[nn.Module, object], Tensor],
    *,
    head_mask: Tensor | None = None,
) -> Tensor:
    r"""How much the loss rises when each head is removed: ``[layers, heads]``.

    .. math::
        I_{lh} = \mathcal{L}(\text{model with head } (l, h) \text{ masked}) -
                 \mathcal{L}(\text{model})

    (Michel et al., 2019, by ablation). A head the model does not use scores ~0; a negative
    score means the model does better without it. ``loss_fn(model, data)`` returns the
    scalar loss; it is called ``1 + layers * heads`` times, in eval mode and without
    gradients (the model's training mode is restored). ``head_mask`` (``[layers, heads]``)
    scores the heads of an already-pruned model: it applies to every call, the baseline
    included, so a head it removes scores exactly 0.

    >>> import torch
    >>> from graphattn import FullGraph
    >>> from graphattn.nn import GraphTransformer, GraphTransformerConfig
    >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, channels=8, heads=2))
    >>> data = (torch.randn(6, 3), FullGraph(6), torch.randn(6, 1))
    >>> def loss_fn(model, data):
    ...     x, g, y = data
    ...     return torch.nn.functional.mse_loss(model(x, g).node, y)
    >>> head_importance(model, data, loss_fn).shape  # [layers, heads]
    torch.Size([2, 2])
    """
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}")
    layers, heads = _layers_and_heads(model)
    device = next(iter(layers[0].parameters())).device
    if head_mask is None:
        base = torch.ones(len(layers), heads, device=device)
    else:
        base = _check_mask("head_mask", head_mask, (len(layers), heads)).float()
    was_training = model.training
    model.eval()

    def loss(mask: Tensor) -> float:
        with mask_heads(model, mask):
            value = loss_fn(model, data)
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise ValueError("`loss_fn` must return a scalar tensor")
        return float(value)

    try:
        reference = loss(base)
        scores = torch.zeros(len(layers), heads)
        for layer in range(len(layers)):
            for head in range(heads):
                if base[layer, head] == 0:
                    continue  # already removed: masking again changes nothing
                mask = base.clone()
                mask[layer, head] = 0
                scores[layer, head] = loss(mask) - reference
    finally:
        model.train(was_training)
    return scores


def top_heads_mask(importance: Tensor, keep: int) -> Tensor:
    """A ``[layers, heads]`` 0/1 mask that keeps the ``keep`` most important heads (over all
    layers; ties go to the earlier head) and removes the rest.

    >>> import torch
    >>> top_heads_mask(torch.tensor([[0.5, 0.1], [0.0, 0.9]]), keep=2)
    tensor([[1., 0.],
            [0., 1.]])
    """
    if not isinstance(importance, Tensor) or importance.dim() != 2:
        raise ValueError("`importance` must be a [layers, heads] tensor")
    if importance.is_complex() or importance.dtype == torch.bool:
        raise TypeError(f"`importance` must be real, got dtype {importance.dtype}")
    if bool(importance.isnan().any()):
        raise ValueError("`importance` holds NaN: a head without a score cannot be ranked")
    check_int("keep", keep, 0)
    if keep > importance.numel():
        raise ValueError(f"`keep` ({keep}) exceeds the number of heads ({importance.numel()})")
    order = torch.sort(importance.flatten(), descending=True, stable=True).indices
    mask = torch.zeros(importance.numel())
    mask[order[:keep]] = 1.0
    return mask.view_as(importance)
