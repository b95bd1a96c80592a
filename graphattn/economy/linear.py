r"""Closed forms of the shock simulation in its linear special case (Leontief / Ghosh inverse).

**The special case.** Output depends on one relation :math:`r` (``goods``) with elasticity
:math:`\theta_r = 1`: an economy with that relation only and
``ShockDynamics(elasticity={"goods": 1.0})``, or several relations with every other elasticity
0 (``default_elasticity=0.0`` too). Write :math:`A` for the ``[N, N]`` matrix of input shares,
:math:`A_{ij} = w^r_{ji}` (row = customer :math:`i`, column = supplier :math:`j`; a row sums to 1,
or to 0 for an agent with no supplier), :math:`\Sigma = \operatorname{diag}(\sigma)` for the
shocks on :math:`r`, and :math:`x_i(t) = 1 - y_i(t)` for the output loss. Since
:math:`A\mathbf{1} + c = \mathbf{1}` (:math:`c_i = 1` for agents without a supplier, whose input
availability is 1), the rule :math:`y(t) = (I - \Sigma)(A y(t-1) + c)` of
:mod:`graphattn.economy.simulate` is, in losses, exactly

.. math::
    x(0) = \sigma, \qquad
    x(t) = \sigma + (I - \Sigma) A \, x(t-1) \quad \text{(persistent)}, \qquad
    x(t) = A \, x(t-1) \quad \text{(one-off, } t \ge 1\text{)}.

No linearisation is involved. Hence, with :math:`M = (I - \Sigma) A`:

- **persistent shock**: :math:`x(t) = \sum_{s=0}^{t} M^s \sigma`, the cumulative response of
  :math:`t` rounds of propagation, which converges to

  .. math:: x^\star = (I - (I - \Sigma) A)^{-1} \sigma
      = (I - A)^{-1} \sigma + O(\lVert\sigma\rVert^2)

  (:func:`long_run_loss`; the second form is the first-order Ghosh / supply-side Leontief
  inverse :math:`L = (I - A)^{-1}`, :func:`cumulative_impulse_response`);
- **one-off shock**: :math:`x(t) = A^t \sigma` and the cumulative response over all horizons is
  exactly :math:`\sum_{t \ge 0} x(t) = (I - A)^{-1} \sigma = L \sigma`.

Both need the spectral radius of :math:`A` (of :math:`M`) below 1: every agent must reach an
agent without a supplier (or a shocked one) by walking upstream. With the generator's defaults
the goods network is acyclic up to a few lateral cycles, and :math:`A` is nilpotent or nearly.

**Aggregate output and the influence vector.** With the size-weighted aggregate loss
:math:`X = f^\top x`, :math:`f = s / \sum_i s_i`
(:func:`~graphattn.economy.scenarios.aggregate_loss`), the first-order response to shocks is
:math:`X = v^\top \sigma` with

.. math:: v = L^\top f = (I - A^\top)^{-1} f,

the *influence vector* of Acemoglu, Carvalho, Ozdaglar and Tahbaz-Salehi (2012)
(:func:`influence_vector`). With independent shocks of standard deviation :math:`\delta`,
:math:`\operatorname{sd}(X) = \delta \lVert v \rVert_2` to first order.

The solves are sparse LU factorisations (scipy, in the ``economy`` extra) in the agents' own
order: agents are numbered tier by tier and goods flow downstream, so :math:`I - A` is nearly
triangular and the factorisation has little fill-in (a million agents in seconds).

>>> import torch
>>> from graphattn.economy import ShockDynamics, economy_data, simulate
>>> data = economy_data(80, num_relations=1, seed=0, dtype=torch.float64)
>>> shocks = torch.zeros(80, 1, dtype=torch.float64)
>>> shocks[10, 0] = 0.5  # agent 10 (tier 1) loses half its capacity, for good
>>> res = simulate(data, shocks, 30, dynamics=ShockDynamics(elasticity={"goods": 1.0}))
>>> torch.allclose(1 - res.output[-1], long_run_loss(data, shocks), atol=1e-14)
True
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from ._validate import check_edges, check_shocks

__all__ = ["cumulative_impulse_response", "influence_vector", "long_run_loss", "supply_matrix"]


def _scipy():
    try:
        import scipy.sparse
        import scipy.sparse.linalg
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "scipy is needed for the closed forms: pip install 'graphattn[economy]'"
        ) from err
    return scipy


def supply_matrix(data: Data, relation: str = "goods"):
    r"""The input-share matrix :math:`A` of one relation as a scipy CSR matrix (float64).

    :math:`A_{ij} = w^r_{ji}`: row ``i`` is customer ``i``, column ``j`` its supplier ``j``.
    Shares are renormalised per customer in float64 (as :func:`~graphattn.economy.simulate`
    does), so every row sums to 1, or 0 for an agent without a supplier on ``relation``.

    Args:
        data: an economy ``Data`` (``edge_index``, ``edge_type``, ``edge_weight``,
            ``relation_names``).
        relation (str, optional): the relation. (default: :obj:`"goods"`)
    """
    sp = _scipy().sparse
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    names = list(getattr(data, "relation_names", None) or [])
    if relation not in names:
        raise ValueError(f"`relation` {relation!r} is not one of data.relation_names = {names}")
    for name in ("edge_index", "edge_type"):
        if getattr(data, name, None) is None:
            raise ValueError(f"`data` has no `{name}`; build it with economy_data or to_data")
    check_edges(data, len(names))
    n = int(data.num_nodes)
    keep = (data.edge_type == names.index(relation)).numpy()
    src, dst = (t[keep] for t in data.edge_index.numpy())
    weight = getattr(data, "edge_weight", None)
    w = (
        weight.double().numpy()[keep]
        if weight is not None
        else np.ones(src.shape[0], dtype=np.float64)
    )
    w = w / np.bincount(dst, weights=w, minlength=n)[dst]
    return sp.csr_matrix((w, (dst, src)), shape=(n, n))


def _shock_vector(data: Data, shocks: Tensor, relation: str) -> np.ndarray:
    n = int(data.num_nodes)
    if not isinstance(shocks, Tensor) or not shocks.is_floating_point():
        raise TypeError("`shocks` must be a floating-point tensor")
    if shocks.dim() == 2:
        names = list(getattr(data, "relation_names", None) or [])
        if shocks.shape[1] != len(names) or relation not in names:
            raise ValueError(
                f"`shocks` of shape {list(shocks.shape)} needs one column per relation "
                f"{names}, one of them {relation!r}"
            )
        shocks = shocks[:, names.index(relation)]
    if list(shocks.shape) != [n]:
        raise ValueError(f"`shocks` must have shape [{n}] or [{n}, K], got {list(shocks.shape)}")
    check_shocks(shocks, [n])
    return shocks.detach().double().cpu().numpy()


def _solve(matrix, rhs: np.ndarray, what: str) -> Tensor:
    sp = _scipy().sparse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular matrix is reported below
        x = sp.linalg.spsolve(matrix.tocsc(), rhs, permc_spec="NATURAL")
    if not np.isfinite(x).all():
        raise ValueError(
            f"{what} does not exist: some agents only supply each other (a closed group "
            "with no outside supplier), so the spectral radius of A is 1 and I - A is singular"
        )
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def long_run_loss(data: Data, shocks: Tensor, *, relation: str = "goods") -> Tensor:
    r"""The exact long-run output loss of a persistent shock in the linear special case,
    :math:`x^\star = (I - (I - \Sigma) A)^{-1} \sigma`, float64 ``[N]``.

    ``1 - simulate(..., persistent=True).output[t]`` converges to it as ``t`` grows (see the
    module docstring for the conditions).

    Args:
        data: the economy.
        shocks: ``[N]`` shocks on ``relation``, or ``[N, K]`` (the ``relation`` column is used).
        relation (str, optional): the relation output depends on. (default: :obj:`"goods"`)
    """
    sp = _scipy().sparse
    a = supply_matrix(data, relation)
    sigma = _shock_vector(data, shocks, relation)
    m = sp.diags(1.0 - sigma) @ a
    return _solve(sp.identity(a.shape[0], format="csr") - m, sigma, "the long-run loss")


def cumulative_impulse_response(data: Data, shocks: Tensor, *, relation: str = "goods") -> Tensor:
    r"""The Ghosh-inverse response :math:`L \sigma = (I - A)^{-1} \sigma`, float64 ``[N]``.

    Exactly the sum over all horizons of the output loss after a one-off shock, and the first
    order (in :math:`\sigma`) of the long-run loss of a persistent one.

    Args:
        data: the economy.
        shocks: ``[N]`` or ``[N, K]`` as for :func:`long_run_loss`.
        relation (str, optional): the relation output depends on. (default: :obj:`"goods"`)
    """
    sp = _scipy().sparse
    a = supply_matrix(data, relation)
    sigma = _shock_vector(data, shocks, relation)
    return _solve(sp.identity(a.shape[0], format="csr") - a, sigma, "the Leontief inverse")


def influence_vector(
    data: Data, weights: Tensor | None = None, *, relation: str = "goods"
) -> Tensor:
    r"""The influence vector :math:`v = (I - A^\top)^{-1} f`, float64 ``[N]``.

    :math:`v_j` is the first-order response of aggregate output :math:`f^\top y` to a unit
    shock at agent :math:`j`; :math:`\lVert v \rVert_2` times the shocks' standard deviation is
    aggregate volatility under independent shocks (Acemoglu et al., 2012).

    Args:
        data: the economy.
        weights: ``[N]`` non-negative aggregation weights :math:`f`, normalised to sum 1;
            default the agents' sizes ``data.agent_size`` (as in
            :func:`~graphattn.economy.scenarios.aggregate_loss`).
        relation (str, optional): the relation output depends on. (default: :obj:`"goods"`)
    """
    sp = _scipy().sparse
    a = supply_matrix(data, relation)
    n = a.shape[0]
    if weights is None:
        size = getattr(data, "agent_size", None)
        weights = size if size is not None else torch.ones(n, dtype=torch.float64)
    if not isinstance(weights, Tensor) or list(weights.shape) != [n]:
        raise ValueError(f"`weights` must be a tensor of shape [{n}]")
    f = weights.detach().double().cpu().numpy()
    if not np.isfinite(f).all() or (f < 0).any() or not f.sum() > 0:
        raise ValueError("`weights` must be finite and non-negative with a positive sum")
    return _solve(sp.identity(n, format="csr") - a.T, f / f.sum(), "the influence vector")
