"""Loaded by pytest before ``tests/conftest.py``, and so before anything imports Triton.

Without a GPU the fused engine's Triton kernels are tested on CPU tensors through Triton's
interpreter (``tests/engines/test_fused_triton.py``). ``@triton.jit`` reads
``TRITON_INTERPRET`` when a function is defined, Triton's own language functions included,
and ``import graphattn`` imports Triton (through torch_geometric and ``torch._dynamo``), so the
setting must be in the environment before that: here. Nothing else in the suite uses Triton
on the CPU. With a GPU the setting is left alone, and those tests run the compiled kernels on
CUDA tensors; an explicit ``TRITON_INTERPRET`` in the environment always wins.
"""

import os

import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
