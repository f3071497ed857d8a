#!/usr/bin/env python3
"""Reference dequantizations from the `gguf` Python package, for the engine's tests.

Writes quant_blocks.json: for each GGML type Eddy reads, a few random blocks (hex) and the
values gguf.quants.dequantize gives for them; and, for every tensor of the shared tiny q8_0
GGUFs (fixtures/models), the sha256 of its dequantized float32 little-endian bytes.

    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install gguf==0.19.0 numpy
    /tmp/pyenv/bin/python engine/tests/reference/quant/make_quant_reference.py fixtures/models
"""
import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

rng = np.random.default_rng(20261121)


def random_f16(n, lo=-0.05, hi=0.05):
    return rng.uniform(lo, hi, n).astype(np.float16).view(np.uint8)


def random_blocks(qtype, n):
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    # Finite, realistic scales: the f16 fields get values in a sane range.
    if qtype in (T.Q8_0, T.Q4_0, T.Q5_0):
        raw[:, 0:2] = random_f16(n).reshape(n, 2)
    elif qtype in (T.Q4_1, T.Q5_1):
        raw[:, 0:4] = random_f16(2 * n).reshape(n, 4)
    elif qtype in (T.Q4_K, T.Q5_K):
        raw[:, 0:4] = random_f16(2 * n, 0.0, 0.01).reshape(n, 4)
    elif qtype == T.Q6_K:
        raw[:, 208:210] = random_f16(n, 0.0, 0.01).reshape(n, 2)
    elif qtype == T.Q2_K:
        raw[:, 80:84] = random_f16(2 * n, 0.0, 0.01).reshape(n, 4)
    elif qtype == T.Q3_K:
        raw[:, 108:110] = random_f16(n, 0.0, 0.01).reshape(n, 2)
    elif qtype == T.IQ4_NL:
        raw[:, 0:2] = random_f16(n).reshape(n, 2)
    elif qtype == T.F16:
        raw = random_f16(n * 1, -4, 4).reshape(n, 2)
    elif qtype == T.BF16:
        raw = (rng.uniform(-4, 4, n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(n, 2)
    elif qtype == T.F32:
        raw = rng.uniform(-4, 4, n).astype(np.float32).view(np.uint8).reshape(n, 4)
    return raw


def main(models_dir):
    out = {"command": " ".join(["python3"] + sys.argv), "versions": {"gguf": version("gguf"), "numpy": np.__version__}, "blocks": {}, "tensors": {}}
    for qtype in (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q5_K, T.Q6_K, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.IQ4_NL):
        n = 3 if gguf.GGML_QUANT_SIZES[qtype][0] > 1 else 64
        raw = random_blocks(qtype, n)
        values = gguf.quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        out["blocks"][qtype.name] = {"hex": raw.reshape(-1).tobytes().hex(), "values": [float(v) for v in values]}
    for path in sorted(Path(models_dir).glob("*/*-q8_0.gguf")):
        reader = gguf.GGUFReader(path)
        tensors = {}
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type).astype("<f4")
            tensors[t.name] = {"type": t.tensor_type.name, "sha256": hashlib.sha256(values.tobytes()).hexdigest(), "first": [float(v) for v in values.reshape(-1)[:4]]}
        out["tensors"][path.name] = tensors
    Path(__file__).with_name("quant_blocks.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/models")
