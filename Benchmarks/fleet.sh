#!/usr/bin/env bash
# Fleet mode at ten instances: etcd x3, ten fleet instances and ten plain ones under a light load,
# 100 flips through etcd against 100 `ctl --socket x10` flips, the etcd leader killed mid-flips,
# and the idle cost of fleet mode. The measuring is Benchmarks/fleet.py (its header says how);
# this installs what it needs (wrk, nginx: lib.sh; etcd-server), builds the release binary when
# missing (or uses $SWITCHYARD) and notes the machine's load. Arguments go to fleet.py.
#   bash Benchmarks/fleet.sh                       # ~2 min
#   bash Benchmarks/fleet.sh --flips 20 --idle 10  # quick look
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init
if ! command -v etcd >/dev/null 2>&1; then
  log "installing etcd-server (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >&2; }
fi
resolve_switchyard
[[ -n $SY_BIN ]] || die "$SY_SKIP"
echo "uptime at start: $(uptime)"
rc=0
"$PY" "$BENCH_DIR/fleet.py" --binary "$SY_BIN" "$@" || rc=$?
echo "uptime at end: $(uptime)"
exit "$rc"
