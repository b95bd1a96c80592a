"""The copy task of ``heads_copy.py`` and ``heads_diversity.py`` (a helper module, not a script).

``n`` random tokens followed by ``n`` query slots, as one graph of full attention over the
``2n`` nodes; query slot ``i`` carries position ``i``, like source token ``i``, and must output
that token. The model is one Pre-LN block with sinusoidal positions and a token classifier.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from graphattn import FullGraph
from graphattn.experiments import accuracy, fit, seed_everything
from graphattn.nn import GraphTransformer, GraphTransformerConfig


def copy_batch(n: int, num_seqs: int, vocab: int, gen: torch.Generator):
    """``num_seqs`` sequences of ``n`` random tokens followed by ``n`` query slots.

    Node features: the one-hot token (``vocab``) for the first half, a query flag for the
    second. Returns ``(x [S * 2n, vocab + 1], pos [S * 2n], target [S * n])``.
    """
    tokens = torch.randint(0, vocab, (num_seqs, n), generator=gen)
    x = torch.zeros(num_seqs, 2 * n, vocab + 1)
    x[:, :n, :vocab] = F.one_hot(tokens, vocab).float()
    x[:, n:, vocab] = 1.0
    pos = torch.arange(n).repeat(2).repeat(num_seqs)
    return x.reshape(-1, vocab + 1), pos, tokens.reshape(-1)


def copy_model(heads: int, s: dict, orthogonality: float = 0.0) -> GraphTransformer:
    """One Pre-LN block with ``heads`` heads of ``s["head_dim"]`` channels (so the width grows
    with the heads), sinusoidal positions, a token classifier per node."""
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=s["vocab"] + 1,
            channels=heads * s["head_dim"],
            heads=heads,
            num_layers=1,
            out_channels=s["vocab"],
            ffn_ratio=1,
            positional="sinusoidal",
            engine="dense",
            orthogonality=orthogonality,
        )
    )


def train_copy(
    n: int, heads: int, s: dict, seed: int, *, orthogonality: float = 0.0, early_stop: bool = True
):
    """Train :func:`copy_model` on fresh random sequences of length ``n`` (``s``: vocab,
    head_dim, steps, eval_every, tokens, lr, target); returns the model, its held-out data and a
    result dict (token accuracy on the query slots, steps, final loss, seconds). With
    ``early_stop`` training stops at the first evaluation that reaches ``s["target"]``."""
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    num_seqs = max(1, s["tokens"] // (2 * n))
    pattern = FullGraph.from_sizes([2 * n] * num_seqs)
    query = (torch.arange(2 * n) >= n).repeat(num_seqs)
    held_out = [
        copy_batch(n, num_seqs, s["vocab"], torch.Generator().manual_seed(10_000 + seed + i))
        for i in range(4)
    ]
    model = copy_model(heads, s, orthogonality)
    every = s.get("eval_every", s["steps"])
    epochs = max(1, s["steps"] // every)
    state = {"accuracy": 0.0, "epochs": 0}

    def loss_fn(model, batch):
        x, pos, y = batch
        logits = model(x, pattern, pos=pos).node[query]
        return F.cross_entropy(logits, y) + model.regularization()

    def evaluate() -> float:
        with torch.no_grad():
            hits = [accuracy(model(x, pattern, pos=pos).node[query], y) for x, pos, y in held_out]
        return sum(hits) / len(hits)

    def stop(epoch: int) -> bool:
        state["epochs"] = epoch + 1
        if not early_stop:
            return False
        state["accuracy"] = evaluate()
        return state["accuracy"] >= s["target"]

    start = time.perf_counter()
    history = fit(
        model, loss_fn,
        lambda epoch: [copy_batch(n, num_seqs, s["vocab"], gen) for _ in range(every)],
        epochs=epochs, lr=s["lr"], stop=stop,
    )  # fmt: skip
    result = {
        "accuracy": evaluate(),
        "steps": state["epochs"] * every,
        "final_loss": history[-1],
        "seconds": time.perf_counter() - start,
    }
    return model, (held_out[0], pattern), result
