"""The claims of examples/claims/transformer_*.py that a test can check honestly."""

from __future__ import annotations

import argparse

import pytest
import torch

from graphattn import MultiHeadAttentionConv
from tests.examples._studies import load_example

variance, params, logits, depth, memory = (
    load_example(f"claims/transformer_{claim}")
    for claim in ("variance", "params", "logits", "depth", "memory")
)


def test_attention_parameter_count_does_not_depend_on_heads():
    rows = params.attention_param_counts((1, 2, 4, 8, 16), d_model=64)
    assert {r["attention_params"] for r in rows} == {4 * (64 * 64 + 64)}
    assert len({r["block_params"] for r in rows}) == 1
    # with edge features, still independent of heads
    counts = {
        sum(p.numel() for p in MultiHeadAttentionConv(64, 64, h, edge_dim=3).parameters())
        for h in (1, 4, 16)
    }
    assert len(counts) == 1


def test_output_variance_at_init_is_roughly_independent_of_heads():
    rows = variance.measure_output_variance((1, 4, 16), d_model=64, num_nodes=48, seeds=6)
    means = [r["output_var_mean"] for r in rows]
    assert max(means) / min(means) < 1.5, means  # loose: the seed-to-seed spread is wide


def test_scaled_logit_variance_stays_near_one_and_unscaled_grows():
    rows = logits.measure_logit_variance((16, 64, 256), d_model=256, num_nodes=32, seeds=2)
    for r in rows:
        assert 0.6 < r["logit_var_scaled"] < 1.6, r
    assert rows[-1]["logit_var_unscaled"] > 8 * rows[0]["logit_var_unscaled"]
    # without the scale the softmax saturates as d_h grows; with it, it does not
    assert rows[-1]["max_weight_unscaled"] > 2 * rows[-1]["max_weight_scaled"]


def test_gradient_norms_at_init_are_finite_for_both_orders():
    for norm in ("pre", "post"):
        norms = depth.gradient_norms_at_init(norm, depth=4, channels=16)
        assert len(norms) == 4 and all(torch.isfinite(torch.tensor(norms))) and min(norms) > 0


@pytest.mark.slow
def test_memory_trial_runs_in_a_subprocess(tmp_path):
    args = argparse.Namespace(
        channels=16,
        heads=2,
        layers=2,
        window=16,
        threads=1,
        trial_timeout=120.0,
    )
    for variant in ("dense", "blocked"):
        r = memory.spawn_trial(args, variant, True, 64, 120.0)  # a fresh process per trial
        assert r["status"] == "ok" and r["peak_extra_bytes"] > 0, (variant, r)
