#!/usr/bin/env bash
# Runs every fuzz target of the repository (every `func FuzzX` in a
# _test.go file, in whichever module it lives) for FUZZTIME each:
#
#	hack/fuzz.sh [FUZZTIME]     # make fuzz FUZZTIME=30s
#
# A failing input is written to testdata/fuzz/FuzzX/ beside the target, as
# go test -fuzz does; rerun it with go test -run 'FuzzX/<file>'. Exits 1 if
# any target failed, after running all of them.
#
# Go 1.26's fuzzing engine can fail a run that found nothing with a bare
# "context deadline exceeded" when -fuzztime runs out (golang/go#75804, a
# race in its coordinator, fixed in Go 1.27). Such a run, with no failing
# input written, is run once more rather than reported.
set -uo pipefail

fuzztime=${1:-5s}
go=${GO:-go}
cd "$(dirname "$0")/.." || exit 1

# The module directory that holds dir: the nearest parent with a go.mod.
module_of() {
	local d=$1
	while [[ ! -f $d/go.mod ]]; do d=$(dirname "$d"); done
	echo "$d"
}

# One run of target in package dir (relative to the repository).
fuzz_once() {
	local dir=$1 target=$2 mod rel
	mod=$(module_of "$dir")
	rel=$(realpath --relative-to="$mod" "$dir")
	(cd "$mod" && "$go" test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "./$rel")
}

# Every target as "dir target", e.g. "./cmd/elector FuzzHTTP".
targets=()
while IFS= read -r file; do
	while IFS= read -r target; do
		targets+=("$(dirname "$file") $target")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '/testdata/' | sort)

failed=()
n=${#targets[@]}
for t in "${targets[@]}"; do
	dir=${t% *} target=${t#* }
	echo "=== $target ($dir, $fuzztime)"
	out=$(fuzz_once "$dir" "$target" </dev/null 2>&1)
	rc=$?
	if ((rc != 0)) && grep -qx '    context deadline exceeded' <<<"$out" &&
		! grep -q 'Failing input written to' <<<"$out"; then
		echo "$out" | tail -n 4
		echo "=== $target: the engine's deadline race (golang/go#75804), no failing input; once more"
		out=$(fuzz_once "$dir" "$target" </dev/null 2>&1)
		rc=$?
	fi
	# The engine's progress lines, but the last, are noise here.
	echo "$out" | grep -v '^fuzz: elapsed: .*, execs: ' || true
	echo "$out" | grep '^fuzz: elapsed: .*, execs: ' | tail -n 1
	if ((rc != 0)); then
		failed+=("$target ($dir)")
	fi
done

if ((n == 0)); then
	echo "no fuzz targets found" >&2
	exit 1
fi
if ((${#failed[@]} > 0)); then
	printf 'FAIL: %s\n' "${failed[@]}"
	echo "fuzz: ${#failed[@]} of $n targets failed"
	exit 1
fi
echo "fuzz: $n targets ran for $fuzztime each, none failed"
