#!/usr/bin/env bash
# Builds one of Switchyard's libFuzzer targets (with AddressSanitizer) and runs it for SECONDS.
#   bash Benchmarks/fuzz.sh TARGET SECONDS [libFuzzer flags...]     (SECONDS 0: until stopped)
# TARGET: request, response, chunked, config, control, prometheus, statefile, guard (harnesses in
# Benchmarks/fuzz/).
# The code under test is compiled straight from Sources/ with swiftc, so no package changes are
# needed and `swift test` never sees these: the files a harness exercises go into one module
# with it, and the Switchyard modules those files import are built first, each as a module of
# its own (in dependency order, as Package.swift has them), all instrumented alike. A module
# whose whole would drag in the data path (Runtime, Proxy) is built from the one file that is
# needed, under its own name, so that the `import`s in Sources/ resolve unchanged.
# Everything the run writes goes under .fuzz/ (git-ignored): binaries in bin/, objects and
# modules in obj/TARGET/, the build log in build-TARGET.log, the grown corpus in corpus/TARGET/
# (the seeds in Benchmarks/fuzz/corpus/TARGET/ are read, never written), crashes in
# artifacts/TARGET/.
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
mkdir -p "$work/bin" "$work/corpus/$target" "$work/artifacts/$target"

obj="$work/obj/$target"   # one per target, so that two runs at once never share objects
mkdir -p "$obj"
binary="$work/bin/fuzz-$target"
log="$work/build-$target.log"
: >"$log"
# `package` declarations are used across Switchyard's modules: every module built here and the
# harness are one package. Modules are built with testing enabled, so that a harness can
# `@testable import` one to reach its internal functions, as the unit tests do.
flags=(-sanitize=fuzzer,address -parse-as-library -O -g -wmo -swift-version 6
       -enable-upcoming-feature ExistentialAny -package-name Switchyard
       -I "$obj" -I "$root/Sources/COpenSSL")
objects=()

# Linker chatter (gold warns about every ASan helper symbol) is kept out of sight unless the
# build fails. swiftc leaves debug modules in its working directory: that is obj/TARGET/.
compile() {
  if ! (cd "$obj" && swiftc "${flags[@]}" "$@") >>"$log" 2>&1; then
    grep -v 'Cannot export local symbol' "$log" >&2
    echo "fuzz.sh: build of $target failed (full log: $log)" >&2
    exit 1
  fi
}

# module NAME FILE...: a Swift module of its own (NAME.swiftmodule and NAME.o in obj/TARGET/),
# built with the harness's flags so that it is instrumented too; the modules it imports must be
# built before it. Its object is linked into the fuzzer.
module() {
  local name=$1
  shift
  compile -module-name "$name" -enable-testing -emit-module -emit-module-path "$obj/$name.swiftmodule" \
    -c "$@" -o "$obj/$name.o"
  objects+=("$obj/$name.o")
}

# CLinux (TLS imports it): its header as a Clang module found through -I obj/TARGET/, and shim.c
# compiled with clang, instrumented like the Swift code.
clinux() {
  printf 'module CLinux {\n    header "%s"\n    export *\n}\n' "$root/Sources/CLinux/include/CLinux.h" \
    >"$obj/module.modulemap"
  if ! clang -O1 -g -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE= -I "$root/Sources/CLinux/include" \
      -c "$root/Sources/CLinux/shim.c" -o "$obj/CLinux.o" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "fuzz.sh: build of $target failed (full log: $log)" >&2
    exit 1
  fi
  objects+=("$obj/CLinux.o")
}

# Config with what it imports: Routing, and TLS over the system OpenSSL and CLinux.
config_module() {
  clinux
  module Routing "$root"/Sources/Routing/*.swift
  module TLS "$root"/Sources/TLS/*.swift
  module Config "$root"/Sources/Config/*.swift
}

case $target in
  request|response|chunked)
    compile -module-name "Fuzz_$target" "$root"/Sources/HTTP1/*.swift "$root/Benchmarks/fuzz/$target.swift" \
      -o "$binary"
    ;;
  config)
    # The config reader (Config, whole) and the snapshot builder of Runtime with what it uses
    # there: the endpoint registry, and the cookie signers' cache over Crypto (HMAC, on the
    # system OpenSSL). The builder names the endpoint identity of Proxy: that one file
    # (UpstreamSecurity.swift, over TLS) stands for Proxy, so the data path is not built.
    config_module
    module Crypto "$root/Sources/Crypto/HMAC.swift"
    module Proxy "$root/Sources/Proxy/UpstreamSecurity.swift"
    compile -module-name Fuzz_config \
      "$root/Sources/Runtime/SnapshotBuilder.swift" "$root/Sources/Runtime/EndpointRegistry.swift" \
      "$root/Sources/Runtime/SignatureCache.swift" \
      "$root/Benchmarks/fuzz/config.swift" "${objects[@]}" -o "$binary"
    ;;
  prometheus)
    # The answer parser (Rollouts) and the rollout state machine (Config) that judges its counts.
    # Runtime is imported by the parser but not used for this: it is built from ControlJSON.swift
    # alone (which imports Config only), not over the data path.
    config_module
    module Runtime "$root/Sources/Runtime/ControlJSON.swift"
    compile -module-name Fuzz_prometheus "$root/Sources/Rollouts/PrometheusQuery.swift" \
      "$root/Benchmarks/fuzz/prometheus.swift" "${objects[@]}" -o "$binary"
    ;;
  statefile)
    # The saved rollouts of a state file: decoded as the loader does, bounded as
    # Overrides.applied(to:) bounds them, then run on. (Weights, mirrors and endpoints are
    # checked against the command's rules by HostileStateFileTests.) The rollout state machine
    # and the Prometheus gate source rules it checks are compiled into the harness; of the
    # rest of Switchyard they import only Routing (HostPort, for the Prometheus URL).
    module Routing "$root"/Sources/Routing/*.swift
    compile -module-name Fuzz_statefile "$root/Sources/Config/Rollout.swift" \
      "$root/Sources/Config/PrometheusRules.swift" "$root/Sources/Config/PrometheusTarget.swift" \
      "$root/Benchmarks/fuzz/statefile.swift" "${objects[@]}" -o "$binary"
    ;;
  guard)
    # The guard option parser (Rollouts) on the control protocol's words (CommandSocket), and
    # the replies it feeds. ControlValue comes from Runtime, built from ControlJSON.swift alone
    # (RuntimeState, where ControlError lives, stands on the data path: the harness has a copy).
    config_module
    module Runtime "$root/Sources/Runtime/ControlJSON.swift"
    compile -module-name Fuzz_guard "$root/Sources/Rollouts/GuardOptions.swift" \
      "$root/Sources/CommandSocket/ControlProtocol.swift" \
      "$root/Benchmarks/fuzz/guard.swift" "${objects[@]}" -o "$binary"
    ;;
  control)
    # The control protocol (CommandSocket) and the JSON replies, ControlValue from Runtime
    # built from ControlJSON.swift alone (as for guard).
    config_module
    module Runtime "$root/Sources/Runtime/ControlJSON.swift"
    compile -module-name Fuzz_control "$root/Sources/CommandSocket/ControlProtocol.swift" \
      "$root/Benchmarks/fuzz/control.swift" "${objects[@]}" -o "$binary"
    ;;
esac

echo "fuzz.sh: running $target for ${seconds}s" >&2
# New inputs go to the first corpus directory only; the committed seeds stay as they are.
# Swift's own crash backtracer would race libFuzzer's handler for the same signal.
SWIFT_BACKTRACE=enable=no exec "$binary" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$target/" "$@" \
  "$work/corpus/$target" "Benchmarks/fuzz/corpus/$target"
