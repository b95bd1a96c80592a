"""The motif task of ``heads_motifs.py``, ``heads_sparse.py`` and ``heads_prune.py`` (a helper
module, not a script): promoter-like DNA with planted transcription-factor motifs, and a graph
transformer trained to tell the sequences that carry a motif (or a correctly spaced motif pair)
from those that do not.

:func:`motif_setup` generates the data and trains the model once per process and settings.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from graphattn import ChunkedGraph, FullGraph, WindowGraph
from graphattn.experiments import fit, seed_everything
from graphattn.nn import GraphTransformer, GraphTransformerConfig

BASES = "ACGT"
MOTIFS = {"single": "TATAAA", "left": "GGGCGG", "right": "CACGTG"}  # TATA box, GC box, E-box
GROUPS = ("background", "single", "pair", "wrong spacing", "half pair")
GROUP_P = (0.2, 0.25, 0.25, 0.2, 0.1)
LABEL = (0, 1, 1, 0, 0)
#: the motif model's settings per level; ``heads_sparse.py`` and ``heads_prune.py`` analyse it
PRESETS = {
    "full": dict(length=120, spacing=30, kmer=6, channels=64, heads=8, layers=2, steps=2000,
                 batch=32, lr=2e-3, train=8000, val=500, test=1000, lowest=2, seed=0),
    "quick": dict(length=64, spacing=16, kmer=6, channels=32, heads=4, layers=2, steps=500,
                  batch=32, lr=3e-3, train=2000, val=200, test=400, lowest=2, seed=0),
    "smoke": dict(length=24, spacing=8, kmer=6, channels=8, heads=2, layers=2, steps=4,
                  batch=8, lr=3e-3, train=32, val=16, test=24, lowest=1, seed=0),
}  # fmt: skip


def _encode(motif: str) -> np.ndarray:
    return np.array([BASES.index(c) for c in motif])


def _occurrences(seq: np.ndarray, motifs: list[np.ndarray]) -> int:
    windows = np.lib.stride_tricks.sliding_window_view(seq, len(motifs[0]))
    return sum(int((windows == m).all(1).sum()) for m in motifs)


def motif_data(num: int, length: int, spacing: int, seed: int) -> dict:
    """Promoter-like sequences: random bases with planted transcription-factor motifs.

    Each sequence falls in one group: ``background`` (label 0), ``single`` (a TATA box,
    label 1), ``pair`` (a GC box and, ``spacing`` bases after its start, an E-box; label 1),
    ``wrong spacing`` (the same two motifs at another spacing, label 0) and ``half pair``
    (one of the two, label 0). The background holds no motif by chance (re-drawn until it
    does not), so the planted sites are the only ones. Returns ``x [num, L, 4]`` one-hot,
    ``label``, ``group``, ``site`` (``[num, L]`` bool: inside a planted motif) and
    ``left``/``right`` (start of the pair's two sites, -1 if absent).
    """
    width = len(MOTIFS["single"])
    if spacing < width or length < spacing + 2 * width:
        raise ValueError(f"need width {width} <= spacing and spacing + 2 * width <= length")
    rng = np.random.default_rng(seed)
    motifs = {k: _encode(v) for k, v in MOTIFS.items()}
    all_motifs = list(motifs.values())
    seqs = np.zeros((num, length), dtype=np.int64)
    site = np.zeros((num, length), dtype=bool)
    left = np.full(num, -1)
    right = np.full(num, -1)
    group = rng.choice(len(GROUPS), size=num, p=GROUP_P)
    for b in range(num):
        while True:
            seq = rng.integers(0, 4, length)
            if _occurrences(seq, all_motifs) > 0:
                continue
            planted = []
            g = GROUPS[group[b]]
            if g == "single":
                planted.append((int(rng.integers(0, length - width + 1)), "single"))
            elif g in ("pair", "wrong spacing"):
                if g == "pair":
                    gap = spacing
                else:
                    gaps = [d for d in range(width, length - width + 1) if abs(d - spacing) > 3]
                    gap = int(rng.choice(gaps))
                a = int(rng.integers(0, length - width - gap + 1))
                planted += [(a, "left"), (a + gap, "right")]
            elif g == "half pair":
                kind = "left" if rng.random() < 0.5 else "right"
                planted.append((int(rng.integers(0, length - width + 1)), kind))
            for start, kind in planted:
                seq[start : start + width] = motifs[kind]
            if _occurrences(seq, all_motifs) == len(planted):  # planting made no extra site
                break
        seqs[b] = seq
        for start, kind in planted:
            site[b, start : start + width] = True
            if kind == "left":
                left[b] = start
            elif kind == "right":
                right[b] = start
    return {
        "x": F.one_hot(torch.from_numpy(seqs), 4).float(),
        "label": torch.tensor([LABEL[g] for g in group], dtype=torch.float32),
        "group": torch.from_numpy(group),
        "site": torch.from_numpy(site),
        "left": torch.from_numpy(left),
        "right": torch.from_numpy(right),
        "width": width,
    }


def kmer_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[num, L, 4]`` one-hot bases -> ``[num, L, 4k]``: the bases ``i .. i + k - 1`` at node
    ``i`` (zero past the end), a fixed convolution-like stem as DNA models put before their
    attention layers, so that a single node can recognise a motif that starts at it."""
    num, length, _ = x.shape
    padded = torch.cat([x, x.new_zeros(num, k - 1, 4)], dim=1)  # (num, L + k - 1, 4)
    return torch.cat([padded[:, i : i + length] for i in range(k)], dim=-1)  # (num, L, 4k)


def motif_pattern(kind: tuple[str, int | None], num: int, length: int):
    """``num`` sequences of ``length`` bases under ``kind``: ``("full", None)``,
    ``("window", radius)`` or ``("chunked", chunk_size)``."""
    name, size = kind
    sizes = [length] * num
    if name == "full":
        return FullGraph.from_sizes(sizes)
    if name == "window":
        return WindowGraph.from_sizes(sizes, radius=size)
    if name == "chunked":
        return ChunkedGraph.from_sizes(sizes, chunk_size=size)
    raise ValueError(f"unknown pattern kind {name!r}")


def motif_model(s: dict) -> GraphTransformer:
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=4 * s["kmer"],
            channels=s["channels"],
            heads=s["heads"],
            num_layers=s["layers"],
            out_channels=1,
            ffn_ratio=2,
            positional="sinusoidal",
            pool="mean",
        )
    )


def motif_logits(model, x: torch.Tensor, kind, batch: int = 128, **kwargs) -> torch.Tensor:
    """Graph logits ``[num]`` of sequences ``x [num, L, F]`` on the pattern ``kind``."""
    out = []
    with torch.no_grad():
        for i in range(0, x.size(0), batch):
            xb = x[i : i + batch]
            pattern = motif_pattern(kind, xb.size(0), xb.size(1))
            out.append(model(xb.flatten(0, 1), pattern, **kwargs).graph.squeeze(-1))
    return torch.cat(out)


def motif_scores(logits: torch.Tensor, label: torch.Tensor) -> dict:
    return {
        "loss": float(F.binary_cross_entropy_with_logits(logits, label)),
        "accuracy": float(((logits > 0).float() == label).float().mean()),
    }


_CACHE: dict = {}


def motif_setup(s: dict, kind=("full", None), show: bool = False):
    """The data of the motif task and a model trained on it with pattern ``kind``:
    ``(data, model, test scores)``, cached per settings and kind within the process."""
    key = (tuple(sorted((k, str(v)) for k, v in s.items())), kind)
    if key in _CACHE:
        return _CACHE[key]
    seed = s["seed"]
    data = {
        part: motif_data(s[part], s["length"], s["spacing"], seed + i)
        for i, part in enumerate(("train", "val", "test"))
    }
    for part in data.values():
        part["features"] = kmer_features(part["x"], s["kmer"])
    seed_everything(seed)
    model = motif_model(s)
    train = data["train"]
    num, length = train["x"].shape[:2]
    per_epoch = max(1, num // s["batch"])
    epochs = max(1, math.ceil(s["steps"] / per_epoch))
    gen = torch.Generator().manual_seed(seed)

    def batches(epoch):
        perm = torch.randperm(num, generator=gen)
        for i in range(per_epoch):
            idx = perm[i * s["batch"] : (i + 1) * s["batch"]]
            yield train["features"][idx], train["label"][idx]

    def loss_fn(model, batch):
        x, y = batch
        pattern = motif_pattern(kind, x.size(0), length)
        out = model(x.flatten(0, 1), pattern).graph.squeeze(-1)
        return F.binary_cross_entropy_with_logits(out, y)

    start = time.perf_counter()
    fit(model, loss_fn, batches, epochs=epochs, lr=s["lr"], desc=f"motifs {kind[0]}",
        show_progress=show)  # fmt: skip
    seconds = time.perf_counter() - start
    test = data["test"]
    scores = motif_scores(motif_logits(model, test["features"], kind), test["label"])
    print(
        f"  trained on {kind[0]}{'' if kind[1] is None else f'({kind[1]})'} attention: "
        f"{epochs * per_epoch} steps in {seconds:.1f} s; test accuracy {scores['accuracy']:.3f}, "
        f"loss {scores['loss']:.3f}",
        flush=True,
    )
    _CACHE[key] = (data, model, scores)
    return _CACHE[key]
