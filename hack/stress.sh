#!/usr/bin/env bash
# Runs the unit tests of every module with -race -count=COUNT -shuffle=on
# while busy loops keep every core loaded, to shake out tests that pass
# only on an idle machine (a watch opened late, a goroutine not yet
# parked, a fake clock stepped too early):
#
#	hack/stress.sh [COUNT]       # make stress STRESS_COUNT=20
#
# Environment: UNIT_MODULES (the modules, from the Makefile), GO,
# STRESS_LOAD (busy loops, default one per core), STRESS_TIMEOUT (go test
# -timeout per package, default 60m: COUNT runs of a package share it; a
# hung wait fails its test after 30s, see internal/testwait), STRESS_LOG
# (default _output/stress.log).
#
# The test binaries are built before the load starts. The busy loops are
# killed when this script exits, however it exits; each one also ends by
# itself once this script's process is gone (even after a kill -9).
# Prints the failed tests with their counts and exits 1 if any failed,
# after running every module.
set -uo pipefail

count=${1:-10}
go=${GO:-go}
load=${STRESS_LOAD:-$(nproc)}
timeout=${STRESS_TIMEOUT:-60m}
read -r -a modules <<<"${UNIT_MODULES:-. bench test/leaderelector05 tools/image cmd/kubectl-elector ctrl}"
cd "$(dirname "$0")/.." || exit 1
log=${STRESS_LOG:-_output/stress.log}
mkdir -p "$(dirname "$log")"
: >"$log"

echo "stress: building the unit tests of ${modules[*]} with -race"
for m in "${modules[@]}"; do
	(cd "$m" && "$go" test -race -count=1 -run='^$' ./... >/dev/null) || {
		echo "stress: $m does not build" >&2
		exit 1
	}
done

busy=()
stop_busy() {
	((${#busy[@]})) || return 0
	kill "${busy[@]}" 2>/dev/null
	wait "${busy[@]}" 2>/dev/null
	busy=()
}
trap stop_busy EXIT
trap 'exit 130' INT TERM
self=$$
for ((i = 0; i < load; i++)); do
	# Spins; every ~100k iterations checks that this script still runs.
	bash -c 'while kill -0 '"$self"' 2>/dev/null; do for ((j = 0; j < 100000; j++)); do :; done; done' &
	busy+=($!)
done
echo "stress: $load busy loops running; go test -race -count=$count -shuffle=on -timeout=$timeout; log: $log"

status=0
start=$SECONDS
for m in "${modules[@]}"; do
	t0=$SECONDS
	echo "stress: $m"
	(cd "$m" && "$go" test -race -count="$count" -shuffle=on -timeout="$timeout" ./... 2>&1) | tee -a "$log" | grep -E '^(ok|FAIL|---|panic)' || true
	echo "stress: $m took $((SECONDS - t0))s"
done
stop_busy

failed=$(grep -E '^\s*--- FAIL: ' "$log" | sed -E 's/^\s*--- FAIL: ([^ ]+).*/\1/' | sort | uniq -c | sort -rn)
hung=$(grep -c 'timed out after .* waiting for' "$log")
echo "stress: $(((SECONDS - start) / 60)) min under load, COUNT=$count"
if [[ -n $failed ]] || grep -qE '^(FAIL|panic:)' "$log"; then
	status=1
	echo "stress: failed tests (runs failed, name); bounded waits that timed out: $hung"
	echo "$failed"
	grep -E '^FAIL\s' "$log" | sort -u
else
	echo "stress: every run passed"
fi
exit $status
