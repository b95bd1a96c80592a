# ruff: noqa: E501  (the catalogue reads best as one row per case)
"""The bad-input catalogue: every public entry point, called wrongly, raises a ValueError or
TypeError that names the argument, before any compute."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from graphattn import (
    CausalFullGraph,
    ChunkedGraph,
    EdgeList,
    FullGraph,
    GridGraph,
    MultiHeadAttentionConv,
    WindowGraph,
)
from graphattn.analysis import (
    attention_distance,
    attention_entropy,
    attention_layers,
    cka,
    head_importance,
    head_similarity,
    mask_heads,
    orthogonality_penalty,
    relation_shares,
    top_heads_mask,
)
from graphattn.distributed import (
    distribute_model,
    init_distributed,
    owned_mean_loss,
    partition_nodes,
    rank_subgraph,
    replication_factor,
)
from graphattn.economy import (
    ShockDynamics,
    aggregate_loss,
    custom_scenario,
    economy_arrays,
    economy_data,
    from_data,
    hop_distance,
    influence_vector,
    largest_supplier,
    long_run_loss,
    random_shocks,
    scenario,
    simulate,
    supplier_reach,
    supply_chain_economy,
    supply_matrix,
    tier_losses,
    to_data,
)
from graphattn.experiments import (
    RunFolder,
    accuracy,
    benchmark_graph,
    cache_key,
    fit,
    machine_line,
    normalised_mse,
    print_table,
    read_table,
    seed_everything,
    split_indices,
    write_table,
)
from graphattn.experiments.citation import fit_nodes, fit_nodes_khop
from graphattn.experiments.plots import heatmap, lines, panels
from graphattn.graphs import chunked, full, grid, patchify, window
from graphattn.loader import HopSampler, KHopLoader, hop_batch
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


# ---- the economy, loader, distributed, analysis and experiments entry points ----------------
def shocks() -> torch.Tensor:
    return random_shocks(60, 3, seed=1)


def nan_shock() -> torch.Tensor:
    out = shocks()
    out[5, 0] = float("nan")
    return out


def econ_with(**changes):
    """The test economy with some of its tensors edited (a copy)."""
    data = econ().clone()
    for name, edit in changes.items():
        value = getattr(data, name).clone()
        edit(value)
        setattr(data, name, value)
    return data


def _set(index, value):
    def edit(t):
        t[index] = value

    return edit


def _short(name: str):
    """The test economy with one entry too few in ``name``."""
    data = econ().clone()
    setattr(data, name, getattr(data, name)[:-1])
    return data


def _float_edges():
    data = econ().clone()
    data.edge_index = data.edge_index.float()
    return data


def _with_edge(**attrs):
    """A networkx economy with one extra goods edge carrying ``attrs``."""
    graph = supply_chain_economy(30, seed=0)
    graph.add_edge(0, 20, **{"relation": "goods", "weight": 0.5, **attrs})
    return graph


RING = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])


def ring_data(**extra) -> Data:
    return Data(x=torch.randn(6, 2), edge_index=RING, num_nodes=6, **extra)


def node_data() -> Data:
    mask = torch.tensor([True, True, False, False, False, False])
    return ring_data(y=torch.zeros(6, dtype=torch.long), train_mask=mask, val_mask=~mask,
                     test_mask=~mask)  # fmt: skip


def sampler():
    return HopSampler(RING, 6)


ATT = (torch.tensor([[0, 1, 2], [1, 1, 2]]), torch.tensor([[1.0], [0.5], [0.5]]))
MACH = {"cpu": "c", "cores": "2", "torch": "t", "torch_threads": "1"}


def table() -> Path:
    return Path(tempfile.mkdtemp()) / "t.csv"


def empty_csv():
    path = table()
    path.write_text("")
    return path


def fit_call(**kw):
    args = dict(epochs=1, lr=0.1)
    args.update(kw)
    model = torch.nn.Linear(2, 1)
    loss_fn = kw.pop("loss_fn", lambda m, b: m(b).sum())
    args.pop("loss_fn", None)
    return fit(model, loss_fn, lambda e: [torch.ones(1, 2)], **args)


CASES += [
    # economy: generator
    ("economy tier_shares NaN", lambda: economy_arrays(50, tier_shares=[float("nan"), 1, 1, 1, 1]), ValueError, "tier_shares"),
    ("economy tier_shares inf", lambda: economy_arrays(50, tier_shares=[float("inf"), 1, 1, 1, 1]), ValueError, "tier_shares"),
    ("economy tier_shares short", lambda: economy_arrays(50, tier_shares=[1, 1]), ValueError, "tier_shares"),
    ("economy tiers str", lambda: economy_arrays(50, tiers="abc"), TypeError, "tiers"),
    ("economy tiers one", lambda: economy_arrays(50, tiers=["a"]), ValueError, "tiers"),
    ("economy mean_degree inf", lambda: economy_arrays(50, mean_degree=float("inf")), ValueError, "mean_degree"),
    ("economy mean_degree 0.5", lambda: economy_arrays(50, mean_degree=0.5), ValueError, "mean_degree"),
    ("economy mean_degree str", lambda: economy_arrays(50, mean_degree="3"), TypeError, "mean_degree"),
    ("economy cross_link NaN", lambda: economy_arrays(50, cross_link_prob=float("nan")), ValueError, "cross_link_prob"),
    ("economy cross_link 2", lambda: economy_arrays(50, cross_link_prob=2.0), ValueError, "cross_link_prob"),
    ("economy pareto str", lambda: economy_arrays(50, pareto_shape="2"), TypeError, "pareto_shape"),
    ("economy pareto 0", lambda: economy_arrays(50, pareto_shape=0.0), ValueError, "pareto_shape"),
    ("economy agents float", lambda: economy_arrays(50.0), TypeError, "num_agents"),
    ("economy seed -1", lambda: economy_arrays(50, seed=-1), TypeError, "seed"),
    ("economy_data dtype long", lambda: economy_data(50, dtype=torch.long), TypeError, "dtype"),
    ("economy_data dtype str", lambda: economy_data(50, dtype="float32"), TypeError, "dtype"),
    ("supply_chain_economy agents 3", lambda: supply_chain_economy(3), ValueError, "num_agents"),
    # economy: conversion
    ("to_data not a graph", lambda: to_data(econ()), TypeError, "graph"),
    ("to_data dtype long", lambda: to_data(supply_chain_economy(30), dtype=torch.long), TypeError, "dtype"),
    ("to_data negative weight", lambda: to_data(_with_edge(weight=-1.0)), ValueError, "graph"),
    ("to_data NaN weight", lambda: to_data(_with_edge(weight=float("nan"))), ValueError, "graph"),
    ("to_data unknown relation", lambda: to_data(_with_edge(relation="gold")), ValueError, "graph"),
    ("from_data not Data", lambda: from_data(econ().edge_index), TypeError, "data"),
    ("from_data edge_type beyond names", lambda: from_data(econ_with(edge_type=_set(0, 7))), ValueError, "data.edge_type"),
    ("from_data tier beyond names", lambda: from_data(econ_with(tier=_set(0, 9))), ValueError, "data.tier"),
    # economy: simulation
    ("simulate NaN shock", lambda: simulate(econ(), nan_shock(), 2), ValueError, "shocks"),
    ("simulate shock 1.5", lambda: simulate(econ(), random_shocks(60, 3, seed=1) * 2, 2), ValueError, "shocks"),
    ("simulate shocks int", lambda: simulate(econ(), torch.zeros(60, 3, dtype=torch.long), 2), TypeError, "shocks"),
    ("simulate NaN edge weight", lambda: simulate(econ_with(edge_weight=_set(0, float("nan"))), shocks(), 2), ValueError, "data.edge_weight"),
    ("simulate inf edge weight", lambda: simulate(econ_with(edge_weight=_set(0, float("inf"))), shocks(), 2), ValueError, "data.edge_weight"),
    ("simulate zero edge weight", lambda: simulate(econ_with(edge_weight=_set(0, 0.0)), shocks(), 2), ValueError, "data.edge_weight"),
    ("simulate supplier -1", lambda: simulate(econ_with(edge_index=_set((0, 0), -1)), shocks(), 2), ValueError, "data.edge_index"),
    ("simulate customer N", lambda: simulate(econ_with(edge_index=_set((1, 0), 60)), shocks(), 2), ValueError, "data.edge_index"),
    ("simulate edge_index float", lambda: simulate(_float_edges(), shocks(), 2), TypeError, "data.edge_index"),
    ("simulate edge_type -1", lambda: simulate(econ_with(edge_type=_set(0, -1)), shocks(), 2), ValueError, "data.edge_type"),
    ("simulate edge_type K", lambda: simulate(econ_with(edge_type=_set(0, 3)), shocks(), 2), ValueError, "data.edge_type"),
    ("simulate edge_type short", lambda: simulate(_short("edge_type"), shocks(), 2), ValueError, "data.edge_type"),
    ("simulate edge_weight short", lambda: simulate(_short("edge_weight"), shocks(), 2), ValueError, "data.edge_weight"),
    ("simulate steps 10**7", lambda: simulate(econ(), shocks(), 10**7), ValueError, "steps"),
    ("simulate steps float", lambda: simulate(econ(), shocks(), 2.0), ValueError, "steps"),
    ("simulate steps bool", lambda: simulate(econ(), shocks(), True), ValueError, "steps"),
    ("simulate persistent str", lambda: simulate(econ(), shocks(), 2, persistent="yes"), TypeError, "persistent"),
    ("simulate dtype long", lambda: simulate(econ(), shocks(), 2, dtype=torch.long), TypeError, "dtype"),
    ("simulate dynamics str", lambda: simulate(econ(), shocks(), 2, dynamics="linear"), TypeError, "dynamics"),
    ("simulate no goods", lambda: simulate(econ(), shocks(), 2, relation_names=["a", "b", "c"]), ValueError, "relation_names"),
    ("simulate data tensor", lambda: simulate(econ().edge_index, shocks(), 2), TypeError, "data"),
    ("dynamics persistence NaN", lambda: ShockDynamics(labour_persistence=float("nan")), ValueError, "labour_persistence"),
    ("dynamics persistence 2", lambda: ShockDynamics(labour_persistence=2.0), ValueError, "labour_persistence"),
    ("dynamics pass_through 1.5", lambda: ShockDynamics(pass_through={"capital": 1.5}), ValueError, "pass_through"),
    ("dynamics elasticity NaN", lambda: ShockDynamics(elasticity={"goods": float("nan")}), ValueError, "elasticity"),
    ("dynamics activity str", lambda: ShockDynamics(activity={"labour": "a"}), TypeError, "activity"),
    ("dynamics elasticity list", lambda: ShockDynamics(elasticity=[1.0]), TypeError, "elasticity"),
    ("random_shocks density NaN", lambda: random_shocks(10, 3, density=float("nan")), ValueError, "density"),
    ("random_shocks max_size 0", lambda: random_shocks(10, 3, max_size=0.0), ValueError, "max_size"),
    ("random_shocks generator int", lambda: random_shocks(10, 3, generator=1), TypeError, "generator"),
    # economy: scenarios and closed forms
    ("scenario unknown", lambda: scenario(econ(), "meteor"), ValueError, "name"),
    ("scenario seed -1", lambda: scenario(econ(), "labour-shortage", seed=-1), ValueError, "seed"),
    ("scenario seed str", lambda: scenario(econ(), "labour-shortage", seed="a"), TypeError, "seed"),
    ("scenario severity NaN", lambda: scenario(econ(), "credit-crunch", severity=float("nan")), ValueError, "severity"),
    ("scenario share 0", lambda: scenario(econ(), "random-failures", share=0.0), ValueError, "share"),
    ("scenario tier 99", lambda: scenario(econ(), "supplier-failure", tier=99), ValueError, "tier"),
    ("scenario tier unknown", lambda: scenario(econ(), "supplier-failure", tier="farm"), ValueError, "tier"),
    ("scenario edge_type -1", lambda: scenario(econ_with(edge_type=_set(0, -1)), "credit-crunch"), ValueError, "data.edge_type"),
    ("custom_scenario relation", lambda: custom_scenario(econ(), [(1, "gold", 0.5)]), ValueError, "relation"),
    ("custom_scenario relation float", lambda: custom_scenario(econ(), [(1, 0.5, 0.5)]), TypeError, "relation"),
    ("custom_scenario empty", lambda: custom_scenario(econ(), []), ValueError, "shocks"),
    ("hop_distance float ids", lambda: hop_distance(econ(), [0.5]), TypeError, "sources"),
    ("hop_distance id -1", lambda: hop_distance(econ(), [-1]), ValueError, "sources"),
    ("hop_distance max_hops -1", lambda: hop_distance(econ(), [0], max_hops=-1), ValueError, "max_hops"),
    ("hop_distance max_hops float", lambda: hop_distance(econ(), [0], max_hops=1.5), TypeError, "max_hops"),
    ("aggregate_loss shape", lambda: aggregate_loss(econ(), torch.ones(3, 59)), ValueError, "output"),
    ("tier_losses list", lambda: tier_losses(econ(), [1.0]), ValueError, "output"),
    ("supplier_reach relation", lambda: supplier_reach(econ(), relation="gold"), ValueError, "relation"),
    ("largest_supplier tier", lambda: largest_supplier(econ(), tier=-1), ValueError, "tier"),
    ("long_run_loss NaN shock", lambda: long_run_loss(econ(), nan_shock()), ValueError, "shocks"),
    ("long_run_loss relation", lambda: long_run_loss(econ(), shocks(), relation="gold"), ValueError, "relation"),
    ("supply_matrix supplier -1", lambda: supply_matrix(econ_with(edge_index=_set((0, 0), -1))), ValueError, "data.edge_index"),
    ("influence_vector NaN weights", lambda: influence_vector(econ(), torch.full((60,), float("nan"))), ValueError, "weights"),
    ("influence_vector weights shape", lambda: influence_vector(econ(), torch.ones(3)), ValueError, "weights"),
    # loader
    ("HopSampler num_nodes small", lambda: HopSampler(RING, 3), ValueError, "edge_index"),
    ("HopSampler num_nodes -1", lambda: HopSampler(RING, -1), ValueError, "num_nodes"),
    ("HopSampler list", lambda: HopSampler([[0], [1]], 2), TypeError, "edge_index"),
    ("HopSampler float", lambda: HopSampler(RING.float(), 6), TypeError, "edge_index"),
    ("sample seeds float", lambda: sampler().sample(torch.tensor([0.0]), 1), TypeError, "seeds"),
    ("sample seeds duplicate", lambda: sampler().sample(torch.tensor([0, 0]), 1), ValueError, "seeds"),
    ("sample seeds -1", lambda: sampler().sample(torch.tensor([-1]), 1), ValueError, "seeds"),
    ("sample hops -1", lambda: sampler().sample(torch.tensor([0]), -1), ValueError, "num_hops"),
    ("sample hops float", lambda: sampler().sample(torch.tensor([0]), 1.0), TypeError, "num_hops"),
    ("sample fan-out length", lambda: sampler().sample(torch.tensor([0]), 2, [1]), ValueError, "num_neighbors"),
    ("sample fan-out -2", lambda: sampler().sample(torch.tensor([0]), 1, [-2]), ValueError, "num_neighbors"),
    ("sample fan-out str", lambda: sampler().sample(torch.tensor([0]), 1, "1"), TypeError, "num_neighbors"),
    ("sample generator int", lambda: sampler().sample(torch.tensor([0]), 1, [1], generator=3), TypeError, "generator"),
    ("hop_batch data tensor", lambda: hop_batch(RING, torch.tensor([0]), 1), TypeError, "data"),
    ("hop_batch sampler int", lambda: hop_batch(ring_data(), torch.tensor([0]), 1, sampler=3), TypeError, "sampler"),
    ("hop_batch sampler other graph", lambda: hop_batch(ring_data(), torch.tensor([0]), 1, sampler=HopSampler(RING.flip(0), 6)), ValueError, "sampler"),
    ("hop_batch ambiguous attribute", lambda: hop_batch(ring_data(weight=torch.ones(6)), torch.tensor([0]), 1), ValueError, "edge_attrs"),
    ("hop_batch edge_attrs str", lambda: hop_batch(ring_data(), torch.tensor([0]), 1, edge_attrs="w"), TypeError, "edge_attrs"),
    ("hop_batch edge_attrs unknown", lambda: hop_batch(ring_data(), torch.tensor([0]), 1, edge_attrs=["w"]), ValueError, "edge_attrs"),
    ("hop_batch edge_attrs node-sized", lambda: hop_batch(Data(x=torch.randn(7, 2), edge_index=RING, num_nodes=7), torch.tensor([0]), 1, edge_attrs=["x"]), ValueError, "edge_attrs"),
    ("KHopLoader hops -1", lambda: KHopLoader(ring_data(), -1), ValueError, "num_hops"),
    ("KHopLoader input_nodes range", lambda: KHopLoader(ring_data(), 1, input_nodes=torch.tensor([9])), ValueError, "input_nodes"),
    ("KHopLoader input_nodes float", lambda: KHopLoader(ring_data(), 1, input_nodes=torch.tensor([1.0])), TypeError, "input_nodes"),
    ("KHopLoader mask shape", lambda: KHopLoader(ring_data(), 1, input_nodes=torch.tensor([True])), ValueError, "input_nodes"),
    ("KHopLoader collate_fn", lambda: KHopLoader(ring_data(), 1, collate_fn=list), TypeError, "collate_fn"),
    ("KHopLoader fan-out length", lambda: KHopLoader(ring_data(), 2, [1]), ValueError, "num_neighbors"),
    ("KHopLoader ambiguous attribute", lambda: KHopLoader(ring_data(weight=torch.ones(6)), 1), ValueError, "edge_attrs"),
    # distributed
    ("partition num_parts 0", lambda: partition_nodes(RING, 6, 0), ValueError, "num_parts"),
    ("partition more parts than nodes", lambda: partition_nodes(RING, 6, 9, method="random"), ValueError, "num_parts"),
    ("partition method", lambda: partition_nodes(RING, 6, 2, method="spectral"), ValueError, "method"),
    ("partition seed -1", lambda: partition_nodes(RING, 6, 2, method="random", seed=-1), ValueError, "seed"),
    ("partition ids out of range", lambda: partition_nodes(RING, 3, 2), ValueError, "edge_index"),
    ("partition num_nodes float", lambda: partition_nodes(RING, 6.0, 2), TypeError, "num_nodes"),
    ("rank_subgraph rank -1", lambda: rank_subgraph(ring_data(), torch.zeros(6, dtype=torch.long), -1, 1), ValueError, "rank"),
    ("rank_subgraph rank beyond parts", lambda: rank_subgraph(ring_data(), torch.zeros(6, dtype=torch.long), 3, 1), ValueError, "rank"),
    ("rank_subgraph parts float", lambda: rank_subgraph(ring_data(), torch.zeros(6), 0, 1), TypeError, "parts"),
    ("rank_subgraph parts shape", lambda: rank_subgraph(ring_data(), torch.zeros(4, dtype=torch.long), 0, 1), ValueError, "parts"),
    ("rank_subgraph hops -1", lambda: rank_subgraph(ring_data(), torch.zeros(6, dtype=torch.long), 0, -1), ValueError, "num_hops"),
    ("rank_subgraph data tensor", lambda: rank_subgraph(RING, torch.zeros(6, dtype=torch.long), 0, 1), TypeError, "data"),
    ("replication parts float", lambda: replication_factor(RING, torch.zeros(6), 1), TypeError, "parts"),
    ("replication hops -1", lambda: replication_factor(RING, torch.zeros(6, dtype=torch.long), -1), ValueError, "num_hops"),
    ("owned_mean_loss NaN", lambda: owned_mean_loss(torch.ones(3), float("nan")), ValueError, "num_global"),
    ("owned_mean_loss inf", lambda: owned_mean_loss(torch.ones(3), float("inf")), ValueError, "num_global"),
    ("owned_mean_loss 0", lambda: owned_mean_loss(torch.ones(3), 0), ValueError, "num_global"),
    ("owned_mean_loss str", lambda: owned_mean_loss(torch.ones(3), "3"), TypeError, "num_global"),
    ("owned_mean_loss list", lambda: owned_mean_loss([1.0], 1), TypeError, "per_node"),
    ("init_distributed backend", lambda: init_distributed("tcp"), ValueError, "backend"),
    *([("init_distributed nccl without CUDA", lambda: init_distributed("nccl"), ValueError, "backend")]
      if not torch.cuda.is_available() else []),
    ("distribute_model str", lambda: distribute_model("model"), TypeError, "model"),
    # analysis
    ("entropy att list", lambda: attention_entropy([1, 2]), TypeError, "att"),
    ("entropy weights int", lambda: attention_entropy((ATT[0], torch.ones(3, 1, dtype=torch.long))), TypeError, "att.weights"),
    ("entropy weights rows", lambda: attention_entropy((ATT[0], torch.ones(2, 1))), ValueError, "att.weights"),
    ("entropy negative id", lambda: attention_entropy((torch.tensor([[0, -1], [1, 1]]), torch.ones(2, 1))), ValueError, "att.edge_index"),
    ("entropy num_nodes small", lambda: attention_entropy(ATT, num_nodes=1), ValueError, "num_nodes"),
    ("entropy normalize str", lambda: attention_entropy(ATT, normalize="yes"), TypeError, "normalize"),
    ("entropy per_node str", lambda: attention_entropy(ATT, per_node="yes"), TypeError, "per_node"),
    ("distance negative id", lambda: attention_distance((torch.tensor([[-1], [0]]), torch.ones(1, 1)), torch.arange(3.0)), ValueError, "att.edge_index"),
    ("distance positions str", lambda: attention_distance(ATT, "abc"), TypeError, "positions"),
    ("distance positions 3-D", lambda: attention_distance(ATT, torch.zeros(3, 2, 2)), ValueError, "positions"),
    ("distance positions short", lambda: attention_distance(ATT, torch.arange(2.0)), ValueError, "positions"),
    ("distance per_node str", lambda: attention_distance(ATT, torch.arange(3.0), per_node="yes"), TypeError, "per_node"),
    ("relation_shares float types", lambda: relation_shares(ATT, torch.tensor([0.0, 1.0, 0.0]), 2), TypeError, "edge_type"),
    ("relation_shares K 0", lambda: relation_shares(ATT, torch.tensor([0, 1, 0]), 0), ValueError, "num_relations"),
    ("relation_shares type -1", lambda: relation_shares(ATT, torch.tensor([-1, 0, 0]), 2), ValueError, "edge_type"),
    ("relation_shares type K", lambda: relation_shares(ATT, torch.tensor([0, 2, 0]), 2), ValueError, "edge_type"),
    ("relation_shares self_loops", lambda: relation_shares(ATT, torch.tensor([0, 1, 0]), 2, self_loops="keep"), ValueError, "self_loops"),
    ("top_heads NaN importance", lambda: top_heads_mask(torch.tensor([[float("nan"), 1.0]]), 1), ValueError, "importance"),
    ("top_heads bool importance", lambda: top_heads_mask(torch.ones(1, 2, dtype=torch.bool), 1), TypeError, "importance"),
    ("top_heads 1-D", lambda: top_heads_mask(torch.ones(2), 1), ValueError, "importance"),
    ("top_heads keep -1", lambda: top_heads_mask(torch.ones(1, 2), -1), ValueError, "keep"),
    ("top_heads keep 3", lambda: top_heads_mask(torch.ones(1, 2), 3), ValueError, "keep"),
    ("mask_heads shape", lambda: mask_heads(conv(), torch.ones(3)).__enter__(), ValueError, "head_mask"),
    ("mask_heads no layers", lambda: mask_heads(torch.nn.Linear(2, 2), torch.ones(1, 2)).__enter__(), ValueError, "model"),
    ("head_importance loss_fn", lambda: head_importance(conv(), None, 3), TypeError, "loss_fn"),
    ("head_importance non-scalar loss", lambda: head_importance(conv(), None, lambda m, d: torch.ones(2)), ValueError, "loss_fn"),
    ("orthogonality eps -1", lambda: orthogonality_penalty(conv(), eps=-1.0), ValueError, "eps"),
    ("orthogonality eps NaN", lambda: orthogonality_penalty(conv(), eps=float("nan")), ValueError, "eps"),
    ("cka rows differ", lambda: cka(torch.randn(4, 2), torch.randn(5, 2)), ValueError, "a"),
    ("cka int", lambda: cka(torch.ones(4, 2, dtype=torch.long), torch.randn(4, 2)), TypeError, "a"),
    ("head_similarity 2-D", lambda: head_similarity(torch.randn(4, 2)), ValueError, "head_out"),
    ("attention_layers str", lambda: attention_layers("model"), TypeError, "module"),
    # experiments
    ("write_table rows dict", lambda: write_table(table(), {"a": 1}, machine=MACH), TypeError, "rows"),
    ("write_table rows str", lambda: write_table(table(), "abc", machine=MACH), TypeError, "rows"),
    ("write_table rows of lists", lambda: write_table(table(), [[1, 2]], machine=MACH), TypeError, "rows"),
    ("write_table empty", lambda: write_table(table(), [], machine=MACH), ValueError, "rows"),
    ("write_table settings list", lambda: write_table(table(), [{"a": 1}], settings=[1], machine=MACH), TypeError, "settings"),
    ("write_table path is a folder", lambda: write_table(table().parent, [{"a": 1}], machine=MACH), ValueError, "path"),
    ("write_table machine incomplete", lambda: write_table(table(), [{"a": 1}], machine={"cpu": "c"}), ValueError, "machine"),
    ("machine_line info incomplete", lambda: machine_line({"cpu": "c"}), ValueError, "info"),
    ("read_table empty file", lambda: read_table(empty_csv()), ValueError, "path"),
    ("print_table unknown column", lambda: print_table([{"a": 1}], ["b"]), ValueError, "columns"),
    ("split_indices n 1", lambda: split_indices(1, 0.5, 0), ValueError, "n"),
    ("split_indices n -1", lambda: split_indices(-1, 0.5, 0), ValueError, "n"),
    ("split_indices n float", lambda: split_indices(10.0, 0.5, 0), TypeError, "n"),
    ("split_indices fraction NaN", lambda: split_indices(10, float("nan"), 0), ValueError, "test_fraction"),
    ("split_indices fraction str", lambda: split_indices(10, "0.2", 0), TypeError, "test_fraction"),
    ("split_indices seed -1", lambda: split_indices(10, 0.5, -1), ValueError, "seed"),
    ("seed_everything str", lambda: seed_everything("a"), TypeError, "seed"),
    ("fit epochs -1", lambda: fit_call(epochs=-1), ValueError, "epochs"),
    ("fit epochs float", lambda: fit_call(epochs=1.5), TypeError, "epochs"),
    ("fit lr NaN", lambda: fit_call(lr=float("nan")), ValueError, "lr"),
    ("fit lr 0", lambda: fit_call(lr=0.0), ValueError, "lr"),
    ("fit weight_decay -1", lambda: fit_call(weight_decay=-1.0), ValueError, "weight_decay"),
    ("fit clip -1", lambda: fit_call(clip=-1.0), ValueError, "clip"),
    ("fit schedule", lambda: fit_call(schedule="cosine"), ValueError, "schedule"),
    ("fit loss_fn int", lambda: fit_call(loss_fn=3), TypeError, "loss_fn"),
    ("accuracy shapes", lambda: accuracy(torch.randn(4, 3), torch.tensor([0, 1])), ValueError, "logits"),
    ("accuracy list", lambda: accuracy([1], [1]), TypeError, "logits"),
    ("accuracy empty", lambda: accuracy(torch.randn(0, 3), torch.zeros(0, dtype=torch.long)), ValueError, "target"),
    ("normalised_mse shapes", lambda: normalised_mse(torch.randn(4), torch.randn(5)), ValueError, "pred"),
    ("normalised_mse empty", lambda: normalised_mse(torch.randn(0), torch.randn(0)), ValueError, "target"),
    ("normalised_mse constant", lambda: normalised_mse(torch.randn(3), torch.ones(3)), ValueError, "target"),
    ("lines nothing", lambda: lines(table().with_suffix(".png"), {}, xlabel="x", ylabel="y"), ValueError, "series"),
    ("heatmap nothing", lambda: heatmap(table().with_suffix(".png"), [], "a", "b", "c"), ValueError, "rows"),
    ("panels nothing", lambda: panels(table().with_suffix(".png"), []), ValueError, "draws"),
    ("panels ncols 0", lambda: panels(table().with_suffix(".png"), [print], ncols=0), ValueError, "ncols"),
    ("cache_key list", lambda: cache_key([1]), TypeError, "settings"),
    ("RunFolder on a file", lambda: RunFolder(empty_csv()), ValueError, "path"),
    ("benchmark_graph kind", lambda: benchmark_graph("grid", 10, 2, 0), ValueError, "kind"),
    ("benchmark_graph degree 0", lambda: benchmark_graph("random", 10, 0, 0), ValueError, "degree"),
    # real-data training helpers
    ("fit_nodes model str", lambda: fit_nodes("gat", node_data()), TypeError, "model"),
    ("fit_nodes data dict", lambda: fit_nodes(torch.nn.Linear(2, 2), {}), TypeError, "data"),
    ("fit_nodes no masks", lambda: fit_nodes(torch.nn.Linear(2, 2), ring_data(y=torch.zeros(6))), ValueError, "data"),
    ("fit_nodes epochs 0", lambda: fit_nodes(torch.nn.Linear(2, 2), node_data(), epochs=0), ValueError, "epochs"),
    ("fit_nodes lr -1", lambda: fit_nodes(torch.nn.Linear(2, 2), node_data(), lr=-1.0), ValueError, "lr"),
    ("fit_nodes forward 3", lambda: fit_nodes(torch.nn.Linear(2, 2), node_data(), forward=3), TypeError, "forward"),
    ("fit_nodes_khop batch_size 0", lambda: fit_nodes_khop(torch.nn.Linear(2, 2), node_data(), num_hops=1, batch_size=0), ValueError, "batch_size"),
    ("fit_nodes_khop num_hops -1", lambda: fit_nodes_khop(torch.nn.Linear(2, 2), node_data(), num_hops=-1, batch_size=2), ValueError, "num_hops"),
    ("fit_nodes_khop weight_decay nan", lambda: fit_nodes_khop(torch.nn.Linear(2, 2), node_data(), num_hops=1, batch_size=2, weight_decay=float("nan")), ValueError, "weight_decay"),
]  # fmt: skip


@pytest.mark.parametrize(("fn", "error", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error_naming_the_argument(fn, error, name):
    with pytest.raises(error) as info:
        fn()
    assert f"`{name}" in str(info.value), str(info.value)
