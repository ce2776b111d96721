#!/usr/bin/env bash
# Builds one of Switchyard's libFuzzer targets (with AddressSanitizer) and runs it for SECONDS.
#   bash Benchmarks/fuzz.sh TARGET SECONDS [libFuzzer flags...]     (SECONDS 0: until stopped)
# TARGET: request, response, chunked, config, control, prometheus, statefile, guard (harnesses in
# Benchmarks/fuzz/).
# The parsers are compiled straight from Sources/ into one module with the harness, so no
# package changes are needed and `swift test` never sees these. Everything the run writes goes
# under .fuzz/ (git-ignored): binaries in bin/, the grown corpus in corpus/TARGET/ (the seeds in
# Benchmarks/fuzz/corpus/TARGET/ are read, never written), crashes in artifacts/TARGET/.
# A crash is replayed with: .fuzz/bin/fuzz-TARGET .fuzz/artifacts/TARGET/crash-...
set -euo pipefail

usage() { echo "usage: $0 request|response|chunked|config|control|prometheus|statefile|guard SECONDS [libFuzzer flags...]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
target=$1
seconds=$2
shift 2
[[ $seconds =~ ^[0-9]+$ ]] || usage
case $target in request|response|chunked|config|control|prometheus|statefile|guard) ;; *) usage ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work=$root/.fuzz
mkdir -p "$work/bin" "$work/obj" "$work/corpus/$target" "$work/artifacts/$target"

flags=(-sanitize=fuzzer,address -parse-as-library -O -g -wmo -swift-version 6
       -enable-upcoming-feature ExistentialAny)
binary="$work/bin/fuzz-$target"
log="$work/build-$target.log"

# Linker chatter (gold warns about every ASan helper symbol) is kept out of sight unless the
# build fails. swiftc leaves debug modules in its working directory: that is obj/.
compile() {
  if ! (cd "$work/obj" && swiftc "${flags[@]}" "$@") >"$log" 2>&1; then
    grep -v 'Cannot export local symbol' "$log" >&2
    echo "fuzz.sh: build of $target failed (full log: $log)" >&2
    exit 1
  fi
}

case $target in
  request|response|chunked)
    compile -module-name "Fuzz_$target" "$root"/Sources/HTTP1/*.swift "$root/Benchmarks/fuzz/$target.swift" \
      -o "$binary"
    ;;
  config)
    # The config reader imports Routing, and the snapshot builder Crypto (for cookie HMACs):
    # each becomes a module of its own, Crypto from its one file over the system OpenSSL.
    compile -module-name Routing -emit-module -emit-module-path "$work/obj/Routing.swiftmodule" \
      -c "$root"/Sources/Routing/*.swift -o "$work/obj/Routing.o"
    compile -module-name Crypto -emit-module -emit-module-path "$work/obj/Crypto.swiftmodule" \
      -I "$root/Sources/COpenSSL" -c "$root/Sources/Crypto/HMAC.swift" -o "$work/obj/Crypto.o"
    compile -module-name Fuzz_config -I "$work/obj" -I "$root/Sources/COpenSSL" \
      "$root"/Sources/Config/*.swift \
      "$root/Sources/Runtime/SnapshotBuilder.swift" "$root/Sources/Runtime/EndpointRegistry.swift" \
      "$root/Benchmarks/fuzz/config.swift" "$work/obj/Routing.o" "$work/obj/Crypto.o" -o "$binary"
    ;;
  prometheus)
    # The answer parser and the rollout state machine that judges its counts.
    compile -module-name Fuzz_prometheus "$root/Sources/Control/PrometheusQuery.swift" "$root/Sources/Control/Rollout.swift" \
      "$root/Benchmarks/fuzz/prometheus.swift" -o "$binary"
    ;;
  statefile)
    # The saved rollouts of a state file: decoded as the loader does, bounded as
    # Overrides.applied(to:) bounds them, then run on. (Weights, mirrors and endpoints are
    # checked against the command's rules by HostileStateFileTests.)
    compile -module-name Fuzz_statefile "$root/Sources/Control/Rollout.swift" "$root/Sources/Control/PrometheusQuery.swift" \
      "$root/Benchmarks/fuzz/statefile.swift" -o "$binary"
    ;;
  guard)
    # The guard option parser on the control protocol's words, and the replies it feeds.
    compile -module-name Fuzz_guard "$root/Sources/Control/GuardOptions.swift" "$root/Sources/Control/ControlProtocol.swift" \
      "$root/Sources/Control/ControlJSON.swift" "$root/Sources/Control/ConfigJSON.swift" \
      "$root/Benchmarks/fuzz/guard.swift" -o "$binary"
    ;;
  control)
    compile -module-name Fuzz_control "$root/Sources/CommandSocket/ControlProtocol.swift" \
      "$root/Sources/Runtime/ControlJSON.swift" "$root/Sources/Config/ConfigJSON.swift" \
      "$root/Benchmarks/fuzz/control.swift" -o "$binary"
    ;;
esac

echo "fuzz.sh: running $target for ${seconds}s" >&2
# New inputs go to the first corpus directory only; the committed seeds stay as they are.
# Swift's own crash backtracer would race libFuzzer's handler for the same signal.
SWIFT_BACKTRACE=enable=no exec "$binary" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$target/" "$@" \
  "$work/corpus/$target" "Benchmarks/fuzz/corpus/$target"
