#!/usr/bin/env bash
# A decode-shape sweep of `eddy bench` on a lent GPU machine (not CI), after or
# instead of scripts/bench-device.sh (same carried files, same /tmp/models):
# every model with every configuration, one line each, mean of --repeat 2.
# Usage: scripts/bench-sweep.sh CONFIGS_FILE [MODEL:TYPE ...]
#   CONFIGS_FILE: one configuration per line, "NAME|ENV|FLAGS" (ENV: VAR=1 ...
#   or empty), e.g. "rows2||--matvec-rows 2" or "f32down|EDDY_MOE_DOWN_F32=1|".
#   Lines whose NAME starts with "moe" run only on the MoE models, "dense" only
#   on the others. EDDY_SWEEP_ARGS: flags for every run (default: a 64-token
#   prompt and 128 generated tokens). EDDY_SWEEP_PROFILE=1 adds a short
#   --profile run per line: per-dispatch times in $OUT/profile-MODEL-CONFIG.txt.
set -u
cd "$(dirname "$0")/.."
configs="$1"; shift
source scripts/device-lib.sh
device_setup
out="${OUT:-/tmp/out}"
mkdir -p "$out" /tmp/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("${DEFAULT_MODELS[@]}")
generate_models "${models[@]}"
args="${EDDY_SWEEP_ARGS:---prompt-len 64 --gen-len 128 --repeat 2}"
printf '%-24s %-14s %10s %10s %9s %9s\n' model config decode prefill record_ms wait_ms | tee -a "$out/sweep.txt"
for m in "${models[@]}"; do
  name="${m%%:*}"; type="${m##*:}"; f="/tmp/models/$name-$type.gguf"
  [ -f "$f" ] || { echo "generation failed: $(tail -3 "$f.log")"; continue; }
  moe=0; case "$name" in *-a[0-9]*b) moe=1 ;; esac
  while IFS='|' read -r cname cenv cflags; do
    [ -n "$cname" ] || continue
    case "$cname" in moe*) [ $moe = 1 ] || continue ;; dense*) [ $moe = 0 ] || continue ;; esac
    # shellcheck disable=SC2086
    line=$(env $cenv .bench/eddy bench --model "$f" --json $args $cflags 2>>"$out/sweep.err")
    echo "{\"config\":\"$cname\",${line#\{}" >> "$out/sweep.jsonl"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-24s %-14s %10.1f %10.0f %9.3f %9.3f" % (sys.argv[2], sys.argv[3], r["decode_tokens_per_s_mean"], r["prefill_tokens_per_s_mean"], r.get("decode_record_ms_per_token", 0), r.get("decode_wait_ms_per_token", 0)))' "$line" "$name-$type" "$cname" 2>/dev/null | tee -a "$out/sweep.txt" || echo "$name-$type $cname failed: $(tail -2 "$out/sweep.err")" | tee -a "$out/sweep.txt"
    if [ -n "${EDDY_SWEEP_PROFILE:-}" ]; then
      # shellcheck disable=SC2086
      env $cenv .bench/eddy bench --model "$f" --prompt-len 64 --gen-len 8 --repeat 1 --profile --profile-reps 8 $cflags 2>&1 >/dev/null | tr '\r' '\n' | grep -v loading > "$out/profile-$name-$type-$cname.txt"
    fi
  done < "$configs"
done
# The device call brings back a few files only: the profiles travel as one archive.
if ls "$out"/profile-*.txt >/dev/null 2>&1; then
  tar czf "$out/profiles.tgz" -C "$out" $(cd "$out" && ls profile-*.txt) && rm -f "$out"/profile-*.txt
fi
