#!/usr/bin/env python3
"""The browser half of scripts/bench-browser.sh: drives the real app in headless Chromium through its test
hooks (data-testid attributes), runs llama.cpp's WebGPU build (wllama) on the same file in the same browser
and `eddy bench` natively on it, appends one JSON line per model to RESULTS and prints the table of every
model in RESULTS.

    bench_browser.py --chrome CHROME --cdp DIR --app URL --wllama URL --eddy BIN --models DIR \
                     --results FILE [--flags "..."] [--variants "K=V[&K=V] ..."] [--no-wllama] ID ...

ID is a model id as imported (its GGUF is DIR/ID.gguf). Standard library only: the GPU machine has no node.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

# The prompt of every run: ~520 tokens with make_random_gguf.py's vocabulary (about one token per
# character: its filler tokens are short). The second prompt of a tab
# differs so that the engine cannot reuse the first one's state.
PROMPTS = [
    "The lighthouse keeper wrote in his log every night. " * 10,
    "The harbour pilot counted the ships that came in with the tide. " * 8,
]
GEN_TOKENS = 128

# Evaluated in the app's page (opened with ?model=ID&temperature=0&max_tokens=N). Waits for the model, then
# sends each prompt in a new chat, timing the first streamed token (a MutationObserver on the reply's token
# ids) and the whole reply, and returns the UI's own stats and the adapter's features.
APP_JS = r"""
(async (cfg) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const T = performance.now();
  let status = '';
  while (!/ready/i.test(status = (q('model-status')?.textContent || ''))) {
    if (performance.now() - T > cfg.ready_ms) return { error: 'not ready', status, notice: q('notice')?.textContent || null };
    await sleep(20);
  }
  const ready_s = (performance.now() - T) / 1000;
  // A `profile=N` link: the worker times every dispatch once loaded; wait for it before chatting.
  let profile = null;
  if (cfg.profile) {
    while (!(q('profile')?.textContent || '')) {
      if (performance.now() - T > cfg.ready_ms + 120000) return { error: 'no profile', notice: q('notice')?.textContent || null };
      await sleep(50);
    }
    profile = JSON.parse(q('profile').textContent);
  }
  const adapter = await navigator.gpu.requestAdapter();
  const gpu = { features: [...adapter.features].sort(), description: adapter.info?.description || null };
  const turns = [];
  for (const [i, text] of cfg.prompts.entries()) {
    if (i > 0) { q('new-chat').click(); await sleep(300); }
    const p = q('prompt');
    p.value = text; p.dispatchEvent(new Event('input', { bubbles: true }));
    await sleep(100);
    const before = document.querySelectorAll('[data-testid="message-assistant"]').length;
    const t0 = performance.now();
    q('send').click();
    let first = null, last = null;
    for (;;) {
      const m = document.querySelectorAll('[data-testid="message-assistant"]');
      last = m.length > before ? m[m.length - 1] : null;
      if (last && first === null && (last.getAttribute('data-token-ids') || '') !== '') first = performance.now() - t0;
      if (last && last.getAttribute('aria-busy') === 'false' && performance.now() - t0 > 50) break;
      if (performance.now() - t0 > cfg.reply_ms) return { error: 'no reply', ready_s, turns };
      await sleep(2);
    }
    turns.push({
      ttft_ms: first, reply_s: (performance.now() - t0) / 1000,
      stats: last.querySelector('[data-testid="message-stats"]')?.textContent || null,
      prefill_tokens: Number(last.getAttribute('data-prefill-tokens') || 0),
      record_ms: Number(last.getAttribute('data-record-ms') || 0), wait_ms: Number(last.getAttribute('data-wait-ms') || 0),
      tokens: (last.getAttribute('data-token-ids') || '').split(',').filter(Boolean).length,
    });
  }
  let load_times = null;
  try { load_times = JSON.parse(q('model-status').getAttribute('data-load-times') || 'null'); } catch (e) {}
  return { ready_s, gpu, turns, load_times, profile, wasm_peak_mib: Number(q('model-status').getAttribute('data-wasm-peak') || 0) / 2 ** 20,
           notice: q('notice')?.textContent || null };
})
"""


def parse_stats(text):
    """The app's stats line: 'prefill 1234 tok/s · decode 123.4 tok/s · …'."""
    if not text:
        return {}
    pre = re.search(r"prefill ([\d.]+) tok/s", text)
    dec = re.search(r"decode ([\d.]+) tok/s", text)
    return {"prefill_tps": float(pre.group(1)) if pre else None, "decode_tps": float(dec.group(1)) if dec else None}


class Tabs:
    """Tabs in one Chromium (one profile) that can be closed again, over cdp.py's Chrome."""

    def __init__(self, chrome):
        self.c = chrome

    def open(self, url, timeout=120):
        target = self.c.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.c.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.c.call(f"{domain}.enable", session=s)
        self.c.call("Page.navigate", {"url": url}, session=s)
        deadline = time.time() + timeout
        while self.c.eval(s, "document.readyState") != "complete":
            if time.time() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.1)
        return target, s

    def close(self, target):
        self.c.call("Target.closeTarget", {"targetId": target})


def app_run(tabs, url, timeout_s):
    target, s = tabs.open(url)
    cfg = {"prompts": PROMPTS, "ready_ms": timeout_s * 1000, "reply_ms": 240_000, "profile": "profile=" in url}
    try:
        r = tabs.c.eval(s, f"({APP_JS})({json.dumps(cfg)})", timeout=timeout_s + 600)
    except Exception as e:  # a crashed page or a timeout: recorded, the next model still runs
        r = {"error": repr(e)}
    for turn in r.get("turns", []):
        turn.update(parse_stats(turn.get("stats")))
    tabs.close(target)
    return r


def wllama_run(tabs, url, model_url):
    seen = len(tabs.c.console)
    target, s = tabs.open(url)
    try:
        r = tabs.c.eval(s, f"runWllama({json.dumps(model_url)}, {json.dumps(PROMPTS[0])}, {GEN_TOKENS})", timeout=600)
        runs = r.get("runs", [])
        r["prefill_tps"] = runs[0].get("prompt_per_second") if runs else None  # the second run reuses the prompt cache
        r["decode_tps"] = max((x.get("predicted_per_second") or 0) for x in runs) if runs else None
    except Exception as e:
        r = {"error": repr(e)}
    # llama.cpp logs where its KV cache lives: "CPU KV buffer" means it did not get the GPU
    # (seen on the H200 on 2026-12-02), so its figures are not WebGPU's.
    r["backend"] = "cpu" if any("CPU KV buffer" in line for line in tabs.c.console[seen:]) else "gpu"
    tabs.close(target)
    return r


def native_run(eddy, gguf, prompt_tokens, extra=()):
    length = [] if "--prompt-len" in extra else ["--prompt-len", str(prompt_tokens or 512)]
    cmd = [eddy, "bench", "--model", gguf, *length, "--gen-len", str(GEN_TOKENS), "--repeat", "2", "--json", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode or not lines:
        return {"error": p.stderr[-400:], "command": " ".join(cmd)}
    r = json.loads(lines[-1])
    return {"prefill_tps": r.get("prefill_tokens_per_s_mean"), "decode_tps": r.get("decode_tokens_per_s_mean"), "profile": r.get("profile"),
            "record_ms": r.get("decode_record_ms_per_token"), "wait_ms": r.get("decode_wait_ms_per_token"),
            "command": " ".join(cmd)}


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def num(x, fmt="{:.0f}"):
    return fmt.format(x) if isinstance(x, (int, float)) and x else "-"


def table(results):
    rows = [("model", "GB", "ready cold s", "cold GB/s", "ready warm s", "IDB→GPU GB/s", "wasm peak MiB",
             "TTFT first/again ms", "prefill browser", "native", "÷", "decode browser", "range", "native", "÷",
             "record/wait ms browser", "native", "wllama pre/dec", "÷ wllama pre/dec", "warm load s: begin/read/copy/feed/finish/warm-up")]
    for r in results:
        gb = r["bytes"] / 1e9
        cold, warm = r.get("cold", {}), r.get("warm", {})
        wt = warm.get("turns") or [{}, {}]
        ct = cold.get("turns") or [{}]
        # Steady state: the warm tab's second prompt (pipelines compiled, weights resident, no reuse).
        hot = dict(wt[-1]) if wt else {}
        # Decode spreads ±20% from run to run (H200, 2026-12-02): report the median of every turn
        # after the first (each tab's later prompts and the warm tab's first), with the range.
        steady = [t.get("decode_tps") for t in (ct[1:] + wt) if t.get("decode_tps")]
        if steady:
            hot["decode_tps"] = statistics.median(steady)
            hot["decode_range"] = f"{min(steady):.0f}–{max(steady):.0f}"

        nat, wl = r.get("native", {}), r.get("wllama", {})
        peak = max(cold.get("wasm_peak_mib") or 0, warm.get("wasm_peak_mib") or 0)
        rows.append((
            r["id"], f"{gb:.2f}", num(cold.get("ready_s"), "{:.1f}"),
            num(gb / cold["ready_s"] if cold.get("ready_s") else 0, "{:.2f}"), num(warm.get("ready_s"), "{:.1f}"),
            num(gb / warm["ready_s"] if warm.get("ready_s") else 0, "{:.2f}"), num(peak, "{:.1f}"),
            f"{num(ct[0].get('ttft_ms'))}/{num(hot.get('ttft_ms'))}",
            num(hot.get("prefill_tps")), num(nat.get("prefill_tps")), ratio(hot.get("prefill_tps"), nat.get("prefill_tps")),
            num(hot.get("decode_tps"), "{:.1f}"), hot.get("decode_range", "-"), num(nat.get("decode_tps"), "{:.1f}"), ratio(hot.get("decode_tps"), nat.get("decode_tps")),
            f"{num(hot.get('record_ms'), '{:.2f}')}/{num(hot.get('wait_ms'), '{:.2f}')}",
            f"{num(nat.get('record_ms'), '{:.2f}')}/{num(nat.get('wait_ms'), '{:.2f}')}",
            f"{num(wl.get('prefill_tps'))}/{num(wl.get('decode_tps'), '{:.1f}')}" + (" (CPU)" if wl.get("backend") == "cpu" else ""),
            f"{ratio(hot.get('prefill_tps'), wl.get('prefill_tps'))}/{ratio(hot.get('decode_tps'), wl.get('decode_tps'))}",
            "/".join(num((warm.get("load_times") or {}).get(k), "{:.2f}") for k in ("begin_s", "read_wait_s", "copy_s", "feed_s", "finish_s", "warm_up_s")),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("ready: page open → model ready (cold: fresh profile, download + verify + upload; warm: new tab, "
                 "same profile, from IndexedDB). TTFT: send → first streamed token; first = the cold tab's first "
                 "prompt, again = the warm tab's second prompt. prefill/decode browser: the app's own stats for "
                 "that prompt, decode the median (and range) of every prompt after the cold tab's first; native: eddy bench on the same file with the same prompt length; wllama: prefill "
                 "of its first run, decode the better of two; (CPU): it ran on its CPU backend. record/wait: CPU ms "
                 "per decoded token recording and submitting the step / waiting for its token. warm load: the worker's "
                 "seconds making the session, waiting for IndexedDB, copying chunks into wasm, in the engine's loader, "
                 "finishing, and running the model once.")
    return "\n".join(lines)


def steady(run):
    """Decode median and range over a tab's prompts after its first, with the last prompt's other figures."""
    turns = run.get("turns") or []
    last = dict(turns[-1]) if turns else {}
    dec = [t.get("decode_tps") for t in turns[1:] if t.get("decode_tps")]
    if dec:
        last["decode_tps"], last["decode_range"] = statistics.median(dec), f"{min(dec):.0f}–{max(dec):.0f}"
    return last


def variant_table(results):
    """One row per model and variant: the warm tabs opened with the variant's link parameters, in turn."""
    rows = [("model", "variant", "tabs", "decode browser", "range", "native", "÷", "record/wait ms", "prefill", "TTFT ms", "ready s")]
    for r in results:
        for name in dict.fromkeys(v["params"] for v in r.get("variants", [])):
            runs = [v["run"] for v in r["variants"] if v["params"] == name and not v["run"].get("error")]
            dec = [t.get("decode_tps") for run in runs for t in (run.get("turns") or [])[1:] if t.get("decode_tps")]
            last = [steady(run) for run in runs]
            med = lambda key: statistics.median([x[key] for x in last if x.get(key)]) if any(x.get(key) for x in last) else None
            nat = r.get("native_variants", {}).get(name, {})
            d = statistics.median(dec) if dec else None
            rows.append((r["id"], name, str(len(runs)), num(d, "{:.1f}"), f"{min(dec):.0f}–{max(dec):.0f}" if dec else "-",
                         num(nat.get("decode_tps"), "{:.1f}"), ratio(d, nat.get("decode_tps")),
                         f"{num(med('record_ms'), '{:.2f}')}/{num(med('wait_ms'), '{:.2f}')}", num(med("prefill_tps")),
                         num(med("ttft_ms")), num(statistics.median([run["ready_s"] for run in runs if run.get("ready_s")]) if runs else None, "{:.1f}")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("variants: warm tabs (from IndexedDB) opened with the link parameters shown, in turn; decode the median (range) "
                 "of every prompt after each tab's first; native: eddy bench with the same setting where it has one.")
    return "\n".join(lines)


# Link parameters that eddy bench takes as a flag too (profile=N: --profile with an N-token prompt).
NATIVE_FLAGS = {"decode_ahead": "--decode-ahead", "profile": "--prompt-len"}
# Parameters the app ignores that make the native run's device like the browser's (no shader-f16, no matrix units).
NATIVE_SWITCHES = {"no_f16": "--no-f16", "no_coop": "--no-coop"}


def by_label(dispatches):
    out = {}
    for d in dispatches:
        n, ms = out.get(d["label"], (0, 0.0))
        out[d["label"]] = (n + 1, ms + d["ms"])
    return out


def profile_table(results):
    """Browser against native GPU time per kind of dispatch (each repeated back to back), and whole passes."""
    lines = []
    for r in results:
        for v in r.get("variants", []):
            bp = (v["run"] or {}).get("profile")
            np_ = (r.get("native_variants", {}).get(v["params"]) or {}).get("profile")
            if not bp or not np_ or any(x["params"] == v["params"] and x["run"].get("profile") for x in r["variants"][:r["variants"].index(v)]):
                continue
            lines.append(f"{r['id']} ({v['params']}): GPU ms browser / native")
            for phase in ("decode", "prefill"):
                b, n = bp[phase], np_[phase]
                lines.append(f"  {phase} whole pass {b['whole_ms']:.3f} / {n['whole_ms']:.3f} ({ratio(n['whole_ms'], b['whole_ms'])} of native speed)")
                bl, nl = by_label(b["repeated"] or b["dispatches"]), by_label(n["repeated"] or n["dispatches"])
                for label in sorted(set(bl) | set(nl), key=lambda k: -(bl.get(k, (0, 0))[1])):
                    (bc, bms), (nc, nms) = bl.get(label, (0, 0.0)), nl.get(label, (0, 0.0))
                    lines.append(f"    {label:28} {bc:4}× {bms:8.3f} / {nc:4}× {nms:8.3f}")
            lines.append(f"  record ms per step {bp.get('record_ms', 0):.3f} / {np_.get('record_ms', 0):.3f}; dispatch floor us {bp.get('dispatch_floor_us', 0):.1f} / {np_.get('dispatch_floor_us', 0):.1f}")
    return "\n".join(lines)


def main():
    a = argparse.ArgumentParser()
    for flag in ("--chrome", "--cdp", "--app", "--wllama", "--eddy", "--models", "--results"):
        a.add_argument(flag, required=True)
    a.add_argument("--flags", default="")
    a.add_argument("--only-flags", action="store_true", help="--flags without cdp.py's NVIDIA ones (SwiftShader here)")
    a.add_argument("--short", action="store_true", help="a smoke test: short prompts, 16 tokens")
    a.add_argument("--ready-timeout", type=float, default=420)
    a.add_argument("--variants", default="", help="link parameters per extra warm tab, e.g. 'decode_ahead=1 decode_ahead=2'")
    a.add_argument("--rounds", type=int, default=2, help="times each variant's tab is opened, in turn")
    a.add_argument("--no-wllama", action="store_true")
    a.add_argument("ids", nargs="*")
    args = a.parse_args()
    sys.path.insert(0, args.cdp)
    import cdp  # ../shared/browser-gpu/cdp.py, staged by bench-browser.sh

    global PROMPTS, GEN_TOKENS
    if args.short:
        PROMPTS, GEN_TOKENS = [p[: len(p) // 10] for p in PROMPTS], 16
    flags = ([] if args.only_flags else cdp.FLAGS) + args.flags.split()
    for mid in args.ids:
        gguf = os.path.join(args.models, mid + ".gguf")
        r = {"id": mid, "bytes": os.path.getsize(gguf), "flags": flags, "date": time.strftime("%Y-%m-%d %H:%M")}
        url = f"{args.app}/?model={mid}&temperature=0&max_tokens={GEN_TOKENS}"
        # A fresh profile per model: cold means nothing of it in IndexedDB or the shader cache.
        with cdp.Chrome(args.chrome, flags, os.environ.get("CHROME_STDERR")) as c:
            r["browser"] = c.call("Browser.getVersion").get("product")
            tabs = Tabs(c)
            r["cold"] = app_run(tabs, url, args.ready_timeout)
            r["warm"] = app_run(tabs, url, args.ready_timeout)
            variants = args.variants.split()
            r["variants"] = [{"params": v, "run": app_run(tabs, f"{url}&{v}", args.ready_timeout)}
                             for _ in range(args.rounds if variants else 0) for v in variants]
            if not args.no_wllama:
                r["wllama"] = wllama_run(tabs, f"{args.wllama}/wllama.html", f"{args.wllama}/models/{mid}.gguf")
            r["console_tail"] = c.console[-20:]
        shutil.rmtree(c.profile, ignore_errors=True)  # the 8B-A1B leaves 4.7 GB there
        prompt_tokens = ((r["warm"].get("turns") or [{}])[-1]).get("prefill_tokens")
        r["native"] = native_run(args.eddy, gguf, prompt_tokens)
        r["native_variants"] = {}
        for v in args.variants.split():
            extra = [x for k, val in (kv.split("=", 1) for kv in v.split("&")) if k in NATIVE_FLAGS for x in (NATIVE_FLAGS[k], val)]
            extra += [NATIVE_SWITCHES[k] for k in (kv.split("=", 1)[0] for kv in v.split("&")) if k in NATIVE_SWITCHES]
            if "profile=" in v:
                extra += ["--profile"]
            if extra:
                r["native_variants"][v] = native_run(args.eddy, gguf, prompt_tokens, extra)
        print(json.dumps(r), file=sys.stderr, flush=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(r) + "\n")
    results = {}
    for line in open(args.results):
        r = json.loads(line)
        results[r["id"]] = r  # the latest run of each model
    print(table(list(results.values())))
    if any(r.get("variants") for r in results.values()):
        print()
        print(variant_table([r for r in results.values() if r.get("variants")]))
        prof = profile_table(list(results.values()))
        if prof:
            print()
            print(prof)


if __name__ == "__main__":
    main()
