"""Two processes on gloo (DDP, each rank its part + exact halo, loss on owned nodes) give the
loss and gradients of one process on the whole graph, for METIS and random partitions."""

from __future__ import annotations

import gc
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch_geometric.data import Data

from graphattn.distributed import (
    DistContext,
    all_reduce_max,
    all_reduce_sum,
    distribute_model,
    init_distributed,
    owned_mean_loss,
    rank_subgraph,
    reduce_mean,
    shared_partition,
)
from graphattn.nn import GraphTransformer, GraphTransformerConfig

N, F, R, LAYERS, WORLD = 43, 5, 3, 2, 2
STEPS, LR = 2, 0.05


def _graph() -> Data:
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, N, (2, 150), generator=g)
    return Data(
        x=torch.randn(N, F, generator=g),
        y=torch.randn(N, 2, generator=g),
        train_mask=torch.rand(N, generator=g) < 0.7,
        edge_index=edge_index,
        edge_attr=torch.randn(150, 2, generator=g),
        edge_type=torch.randint(0, R, (150,), generator=g),
        num_nodes=N,
    )


def _config() -> GraphTransformerConfig:
    return GraphTransformerConfig(
        in_channels=F,
        channels=12,
        heads=3,
        num_layers=LAYERS,
        out_channels=2,
        ffn_ratio=2,
        edge_dim=2,
        num_relations=R,
    )


def _per_node_loss(model, batch: Data, size: int) -> torch.Tensor:
    """Squared error on the labelled nodes among the first ``size`` (the owned ones)."""
    out = model(batch.x, batch.edge_index, batch.edge_attr, batch.edge_type).node[:size]
    mask = batch.train_mask[:size]
    return ((out[mask] - batch.y[:size][mask]) ** 2).sum(-1)


def _reference(data: Data, state: dict) -> tuple[list[float], dict]:
    """One process, the whole graph, the plain mean: losses of every step, first gradients."""
    model = GraphTransformer(_config())
    model.load_state_dict(state)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses, grads = [], {}
    for step in range(STEPS):
        opt.zero_grad()
        loss = _per_node_loss(model, data, N).mean()
        loss.backward()
        if step == 0:
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        losses.append(float(loss.detach()))
        opt.step()
    return losses, grads


def _worker(rank: int, port: int, data: Data, state: dict, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    ctx = init_distributed("gloo", timeout=timedelta(seconds=60))
    results = {"ctx": ctx, "max": all_reduce_max(0.5 + rank), "sum": all_reduce_sum(rank + 1)}
    for method in ("metis", "random"):
        parts = shared_partition(data.edge_index, N, ctx, method=method, seed=1)
        local = rank_subgraph(data, parts, ctx.rank, LAYERS)
        owned = local.batch_size
        num_global = all_reduce_sum(local.train_mask[:owned].sum())
        model = GraphTransformer(_config())
        model.load_state_dict(state)
        ddp = distribute_model(model, ctx, find_unused_parameters=True)
        opt = torch.optim.SGD(ddp.parameters(), lr=LR)
        losses, grads = [], {}
        for step in range(STEPS):
            opt.zero_grad()
            loss = owned_mean_loss(_per_node_loss(ddp, local, owned), num_global)
            loss.backward()
            if step == 0:
                grads = {
                    n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
                }
            losses.append(float(reduce_mean(loss.detach())))
            opt.step()
        results[method] = dict(
            parts=parts,
            losses=losses,
            grads=grads,
            owned=owned,
            held=local.num_nodes,
            num_global=int(num_global),
        )
    torch.save(results, out / f"rank{rank}.pt")
    # DDP first: a reducer that holds the gloo group's last reference deadlocks at exit
    # (docs/distributed.md)
    del ddp, opt
    gc.collect()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(data: Data, state: dict, out: Path, timeout: float = 120.0) -> None:
    # fork: the children reuse this process's imports and compiled kernels (spawn would
    # re-import torch and PyG in each)
    context = mp.start_processes(
        _worker,
        args=(_free_port(), data, state, out),
        nprocs=WORLD,
        join=False,
        start_method="fork",
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"the {WORLD} DDP processes did not finish within {timeout} s")


def test_two_processes_equal_one(tmp_path):
    data = _graph()
    torch.manual_seed(0)
    state = GraphTransformer(_config()).state_dict()
    ref_losses, ref_grads = _reference(data, state)
    _run(data, state, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for r in ranks:  # every rank gets the reduction over both
        assert r["max"].dtype == torch.float64 and float(r["max"]) == WORLD - 0.5
        assert int(r["sum"]) == WORLD * (WORLD + 1) // 2
    assert [r["ctx"] for r in ranks] == [
        DistContext(r, WORLD, r, torch.device("cpu"), "gloo") for r in range(WORLD)
    ]
    for method in ("metis", "random"):
        a, b = ranks[0][method], ranks[1][method]
        assert torch.equal(a["parts"], b["parts"])  # one partition, broadcast from rank 0
        assert sorted(torch.bincount(a["parts"]).tolist()) == sorted([a["owned"], b["owned"]])
        assert min(a["owned"], b["owned"]) > 0
        assert a["held"] > a["owned"] and b["held"] > b["owned"]  # each has a halo
        assert a["num_global"] == int(data.train_mask.sum())
        for rank in (a, b):
            torch.testing.assert_close(rank["losses"], ref_losses, atol=1e-5, rtol=1e-5)
            assert rank["grads"].keys() == ref_grads.keys()
            for name, grad in ref_grads.items():
                torch.testing.assert_close(
                    rank["grads"][name],
                    grad,
                    atol=1e-5,
                    rtol=1e-5,
                    msg=lambda m, n=name, k=method: f"{k} {n}: {m}",
                )
    assert ref_losses[1] < ref_losses[0]  # the step moved the model: the second loss checks it


def test_single_process_helpers():
    """Without a process group the helpers are the plain single-process operations."""
    assert "WORLD_SIZE" in os.environ or init_distributed() == DistContext()
    per_node = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = owned_mean_loss(per_node, 4)
    assert float(loss.detach()) == 1.5 and float(reduce_mean(loss.detach())) == 1.5
    assert int(all_reduce_sum(torch.tensor(3))) == 3
    assert float(all_reduce_max(0.25)) == 0.25 and all_reduce_max(0.25).dtype == torch.float64
    model = torch.nn.Linear(2, 2)
    assert distribute_model(model) is model
    with pytest.raises(ValueError, match="`num_global` must be > 0"):
        owned_mean_loss(per_node, 0)
    with pytest.raises(TypeError, match="`per_node` must be a torch.Tensor"):
        owned_mean_loss([1.0], 1)
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        distribute_model(lambda x: x)
    with pytest.raises(ValueError, match="`backend` must be"):
        init_distributed("tcp")
