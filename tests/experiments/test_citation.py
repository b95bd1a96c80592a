"""The real-data plumbing: the shipped Planetoid files read offline, and the training loops
(full batch, and exact mini-batches that must follow the full-batch run step for step)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graphattn import MultiHeadAttentionConv
from graphattn.experiments.citation import (
    _adam,
    fit_nodes,
    fit_nodes_khop,
    load_planetoid,
    planetoid_root,
)

SIZES = {  # nodes, features, classes, labelled training nodes (20 per class)
    "Cora": (2708, 1433, 7, 140),
    "CiteSeer": (3327, 3703, 6, 120),
}


@pytest.mark.parametrize("name", list(SIZES))
def test_the_shipped_files_give_the_standard_split(name):
    data = load_planetoid(name)
    nodes, features, classes, train = SIZES[name]
    assert (data.num_nodes, data.num_features) == (nodes, features)
    assert int(data.y.max()) + 1 == classes
    assert int(data.train_mask.sum()) == train
    assert (int(data.val_mask.sum()), int(data.test_mask.sum())) == (500, 1000)
    assert not bool((data.train_mask & data.test_mask).any())
    # NormalizeFeatures: every non-empty row sums to 1
    sums = data.x.sum(1)
    torch.testing.assert_close(sums[sums > 0], torch.ones_like(sums[sums > 0]))
    assert planetoid_root().is_dir()


def test_bad_names_and_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match="`name` must be one of"):
        load_planetoid("PubMed")
    with pytest.raises(FileNotFoundError, match="lacks the raw Planetoid file"):
        load_planetoid("Cora", root=tmp_path)


class _Scripted(nn.Module):
    """Returns precomputed logits in turn (one per call), so the best epoch is known."""

    def __init__(self, logits: list[torch.Tensor]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.logits, self.calls = logits, 0

    def forward(self, x, edge_index):
        out = self.logits[min(self.calls // 2, len(self.logits) - 1)]  # train call, eval call
        self.calls += 1
        return out + 0 * self.weight


def test_the_test_accuracy_is_taken_at_the_first_best_validation_epoch():
    data = load_planetoid("Cora")
    right = torch.nn.functional.one_hot(data.y, 7).float()
    wrong = right.roll(1, dims=1)

    def mix(val_right: bool, test_right: bool) -> torch.Tensor:
        out = wrong.clone()
        out[data.val_mask] = (right if val_right else wrong)[data.val_mask]
        out[data.test_mask] = (right if test_right else wrong)[data.test_mask]
        return out

    # epoch 1 reaches the best validation accuracy first (test right); epoch 2 ties it
    # (test wrong) and must not replace it
    model = _Scripted([mix(False, False), mix(True, True), mix(True, False)])
    result = fit_nodes(model, data, epochs=3)
    assert (result.best_epoch, result.val_acc, result.test_acc) == (1, 1.0, 1.0)


def _two_layers(engine: str) -> nn.Module:
    torch.manual_seed(0)
    convs = nn.ModuleList(
        MultiHeadAttentionConv(i, o, h, out_projection=False, engine=engine)
        for i, o, h in ((1433, 16, 4), (16, 7, 1))
    )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = convs

        def forward(self, x, edge_index):
            return self.convs[1](torch.relu(self.convs[0](x, edge_index)), edge_index)

    return Net().double()


def test_one_batch_of_all_training_nodes_follows_full_batch_training():
    """Exact 2-hop mini-batches: with every training node in one batch, the loss and its
    gradients equal the full-graph ones, so the two runs agree after several Adam steps."""
    data = load_planetoid("Cora")
    data.x = data.x.double()
    full = _two_layers("scatter")
    mini = _two_layers("fused")
    res_full = fit_nodes(full, data, epochs=4)
    res_mini = fit_nodes_khop(mini, data, num_hops=2, batch_size=140, epochs=4)
    for a, b in zip(full.parameters(), mini.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert res_full.best_epoch == res_mini.best_epoch
    assert (res_full.val_acc, res_full.test_acc) == pytest.approx(
        (res_mini.val_acc, res_mini.test_acc)
    )


def test_no_decay_leaves_the_named_parameters_undecayed():
    model = _two_layers("scatter")
    model.convs[1].lin_value.weight.requires_grad_(False)  # frozen: left out
    groups = _adam(model, 0.01, 5e-4, no_decay=("lin_query",)).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed, free = ({names[id(p)] for p in g["params"]} for g in groups)
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert free == {n for n in names.values() if "lin_query" in n}
    assert "convs.1.lin_value.weight" not in decayed | free
    assert decayed | free | {"convs.1.lin_value.weight"} == set(names.values())
