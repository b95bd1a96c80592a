# ruff: noqa: E501  (the catalogue reads best as one row per case)
"""The bad-input catalogue: every public entry point, called wrongly, raises a ValueError or
TypeError that names the argument, before any compute."""

from __future__ import annotations

import pytest
import torch

from graphattn import (
    CausalFullGraph,
    ChunkedGraph,
    EdgeList,
    FullGraph,
    GridGraph,
    MultiHeadAttentionConv,
    WindowGraph,
)
from graphattn.economy import economy_arrays, economy_data, random_shocks, simulate
from graphattn.graphs import chunked, full, grid, patchify, window
from graphattn.nn import GraphTransformer, GraphTransformerBlock, GraphTransformerConfig

X = torch.randn(4, 8)
EI = torch.tensor([[0, 1, 2], [1, 2, 3]])


def conv(**kw):
    return MultiHeadAttentionConv(8, 8, 2, **kw)


ECON = None


def econ():
    global ECON
    if ECON is None:
        ECON = economy_data(60, seed=0)
    return ECON


CASES = [
    # (id, callable, exception, the argument the message must name)
    ("conv in_channels str", lambda: MultiHeadAttentionConv("8", 8, 2), TypeError, "in_channels"),
    ("conv out_channels 0", lambda: MultiHeadAttentionConv(8, 0, 2), ValueError, "out_channels"),
    ("conv heads float", lambda: MultiHeadAttentionConv(8, 8, 2.0), TypeError, "heads"),
    ("conv heads not dividing", lambda: MultiHeadAttentionConv(8, 9, 2), ValueError, "heads"),
    ("conv dropout 1.5", lambda: conv(dropout=1.5), ValueError, "dropout"),
    ("conv edge_dim 0", lambda: conv(edge_dim=0), ValueError, "edge_dim"),
    ("conv num_relations -1", lambda: conv(num_relations=-1), ValueError, "num_relations"),
    ("conv engine unknown", lambda: conv(engine="nope"), ValueError, "engine"),
    ("conv engine int", lambda: conv(engine=3), TypeError, "engine"),
    ("conv beta alone", lambda: conv(beta=True), ValueError, "beta=True"),
    ("conv flow", lambda: conv(flow="up"), ValueError, "flow"),
    ("x list", lambda: conv()([[1.0] * 8] * 4, EI), TypeError, "x"),
    ("x int", lambda: conv()(torch.ones(4, 8, dtype=torch.long), EI), TypeError, "x"),
    ("x width", lambda: conv()(torch.randn(4, 7), EI), ValueError, "x"),
    ("x 1-D", lambda: conv()(torch.randn(8), EI), ValueError, "x"),
    ("x float64", lambda: conv()(X.double(), EI), TypeError, "x"),
    ("x meta", lambda: conv()(torch.randn(4, 8, device="meta"), EI), ValueError, "x"),
    ("edge_index float", lambda: conv()(X, EI.float()), TypeError, "edge_index"),
    ("edge_index uint16", lambda: conv()(X, EI.to(torch.uint16)), TypeError, "edge_index"),
    ("edge_index uint32", lambda: conv()(X, EI.to(torch.uint32)), TypeError, "edge_index"),
    ("edge_index shape", lambda: conv()(X, EI[0]), ValueError, "edge_index"),
    ("edge_index range", lambda: conv()(X, EI + 10), ValueError, "edge_index"),
    ("edge_index negative", lambda: conv()(X, EI - 1), ValueError, "edge_index"),
    ("edge_index list", lambda: conv()(X, [[0, 1], [1, 2]]), TypeError, "edge_index"),
    ("edge_attr without edge_dim", lambda: conv()(X, EI, torch.randn(3, 2)), ValueError, "edge_attr"),
    ("edge_attr rows", lambda: conv(edge_dim=2)(X, EI, torch.randn(2, 2)), ValueError, "edge_attr"),
    ("edge_attr dtype", lambda: conv(edge_dim=2)(X, EI, torch.randn(3, 2).double()), TypeError, "edge_attr"),
    ("edge_type without relations", lambda: conv()(X, EI, edge_type=torch.zeros(3, dtype=torch.long)), ValueError, "edge_type"),
    ("edge_type range", lambda: conv(num_relations=2)(X, EI, edge_type=torch.tensor([0, 1, 2])), ValueError, "edge_type"),
    ("edge_type float", lambda: conv(num_relations=2)(X, EI, edge_type=torch.zeros(3)), TypeError, "edge_type"),
    ("head_mask shape", lambda: conv()(X, EI, head_mask=torch.ones(3)), ValueError, "head_mask"),
    ("return_attention str", lambda: conv()(X, EI, return_attention="yes"), TypeError, "return_attention"),
    ("pattern size mismatch", lambda: conv()(X, FullGraph.from_sizes([3])), ValueError, "x"),
    ("FullGraph sizes float", lambda: FullGraph.from_sizes([2.7, 3]), TypeError, "sizes"),
    ("FullGraph sizes negative", lambda: FullGraph.from_sizes([-1]), ValueError, "sizes"),
    ("CausalFullGraph sizes str", lambda: CausalFullGraph.from_sizes("ab"), TypeError, "sizes"),
    ("ChunkedGraph chunk 0", lambda: ChunkedGraph.from_sizes([4], chunk_size=0), ValueError, "chunk_size"),
    ("WindowGraph radius -1", lambda: WindowGraph.from_sizes([4], radius=-1), ValueError, "radius"),
    ("WindowGraph radius float", lambda: WindowGraph.from_sizes([4], radius=1.5), TypeError, "radius"),
    ("GridGraph height 0", lambda: GridGraph(0, 3), ValueError, "height"),
    ("GridGraph radius -1", lambda: GridGraph(3, 3, radius=-1), ValueError, "radius"),
    ("EdgeList float", lambda: EdgeList(EI.float(), 4), TypeError, "edge_index"),
    ("EdgeList num_nodes", lambda: EdgeList(EI, 2), ValueError, "edge_index"),
    ("full lengths negative", lambda: full([-2]), ValueError, "lengths"),
    ("chunked chunk_size 0", lambda: chunked([4], 0), ValueError, "chunk_size"),
    ("window radius str", lambda: window([4], radius="2"), TypeError, "radius"),
    ("grid rows float", lambda: grid(2.5, 3, neighbourhood=4), TypeError, "rows"),
    ("patchify 2-D image", lambda: patchify(torch.randn(8, 8), 4), ValueError, "image"),
    ("patchify patch 0", lambda: patchify(torch.randn(1, 8, 8), 0), ValueError, "patch_size"),
    ("config heads not dividing", lambda: GraphTransformerConfig(in_channels=3, channels=10, heads=4), ValueError, "heads"),
    ("config norm", lambda: GraphTransformerConfig(in_channels=3, norm="mid"), ValueError, "norm"),
    ("config positional", lambda: GraphTransformerConfig(in_channels=3, positional="spiral"), ValueError, "positional"),
    ("config pool", lambda: GraphTransformerConfig(in_channels=3, pool="median"), ValueError, "pool"),
    ("config orthogonality", lambda: GraphTransformerConfig(in_channels=3, orthogonality=-1.0), ValueError, "orthogonality"),
    ("model x width", lambda: GraphTransformer(GraphTransformerConfig(in_channels=3))(torch.randn(4, 5), EI), ValueError, "x"),
    ("block channels", lambda: GraphTransformerBlock(10, heads=4), ValueError, "heads"),
    ("block x int", lambda: GraphTransformerBlock(8, heads=2)(torch.ones(4, 8, dtype=torch.long), EI), TypeError, "x"),
    ("block x float64", lambda: GraphTransformerBlock(8, heads=2)(X.double(), EI), TypeError, "x"),
    ("block x list", lambda: GraphTransformerBlock(8, heads=2)([[0.0] * 8] * 4, EI), TypeError, "x"),
    ("model x float64", lambda: GraphTransformer(GraphTransformerConfig(in_channels=3, channels=8, heads=2))(torch.randn(4, 3).double(), EI), TypeError, "x"),
    ("shocks num_nodes str", lambda: random_shocks("10", 3), TypeError, "num_nodes"),
    ("shocks num_relations 0", lambda: random_shocks(10, 0), ValueError, "num_relations"),
    ("shocks density str", lambda: random_shocks(10, 3, density="0.1"), TypeError, "density"),
    ("shocks seed float", lambda: random_shocks(10, 3, seed=1.5), TypeError, "seed"),
    ("shocks dtype int", lambda: random_shocks(10, 3, dtype=torch.long), TypeError, "dtype"),
    ("economy agents 0", lambda: economy_arrays(0), ValueError, "num_agents"),
    ("economy relations 0", lambda: economy_arrays(50, num_relations=0), ValueError, "num_relations"),
    ("economy seed str", lambda: economy_arrays(50, seed="a"), TypeError, "seed"),
    ("shocks fraction 2", lambda: random_shocks(10, 3, density=2.0), ValueError, "density"),
    ("simulate steps -1", lambda: simulate(econ(), random_shocks(60, 3, seed=0), steps=-1), ValueError, "steps"),
    ("simulate shocks shape", lambda: simulate(econ(), torch.zeros(3, 3), steps=2), ValueError, "shocks"),
]  # fmt: skip


@pytest.mark.parametrize(("fn", "error", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error_naming_the_argument(fn, error, name):
    with pytest.raises(error) as info:
        fn()
    assert f"`{name}" in str(info.value), str(info.value)
