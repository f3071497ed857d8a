# Shared by the recipes for the lent GPU machine (bench-device.sh, bench-sweep.sh, bench-browser.sh); sourced.
# device_setup: the Vulkan loader and the gguf package from the carried .gl/ and .whl/.
device_setup() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
}
# The speed issue's six models, unless given.
DEFAULT_MODELS=(lfm2-350m:q4_0 lfm2-1.2b:q4_0 lfm2-1.2b:f16 lfm2-2.6b:q4_0 lfm2-8b-a1b:q4_0 lfm2-24b-a2b:q4_0)
# generate_models MODEL:TYPE ...: random-weight GGUFs with the real shapes into /tmp/models, in parallel.
generate_models() {
  mkdir -p /tmp/models
  local gen=() m name type f
  for m in "$@"; do
    name="${m%%:*}"; type="${m##*:}"; f="/tmp/models/$name-$type.gguf"
    [ -f "$f" ] || { python3 scripts/make_random_gguf.py "$name" "$type" "$f" > "$f.log" 2>&1 & gen+=($!); }
  done
  [ ${#gen[@]} -gt 0 ] && wait "${gen[@]}"
  return 0
}
