#!/usr/bin/env bash
# Checks (or, with --fix, adds) the Apache-2.0 header of hack/boilerplate.go.txt
# at the top of every Go file in the repository, as Kubernetes projects do.
# A file's copyright year is the year it was added; any year 20XX passes.
# A //go:build line comes first (gofmt puts it there), then the header.
set -euo pipefail
cd "$(dirname "$0")/.."

fix=false
[[ "${1:-}" == "--fix" ]] && fix=true

boilerplate=hack/boilerplate.go.txt
# The header without its year line, to compare with each file's first lines.
want=$(sed '2d' "$boilerplate")
lines=$(wc -l <"$boilerplate")

missing=()
while IFS= read -r f; do
	skip=0
	first=""
	IFS= read -r first <"$f" || true
	if [[ "$first" == //go:build* ]]; then
		skip=2
	fi
	head=$(sed -n "$((skip + 1)),$((skip + lines))p" "$f")
	if [[ "$(sed '2d' <<<"$head")" == "$want" ]] && grep -Eq '^Copyright 20[0-9]{2} The elector Authors\.$' <<<"$(sed -n 2p <<<"$head")"; then
		continue
	fi
	if $fix; then
		{ sed -n "1,${skip}p" "$f"; cat "$boilerplate"; echo; sed -n "$((skip + 1)),\$p" "$f"; } >"$f.tmp" && mv "$f.tmp" "$f"
		echo "added the license header to $f"
	else
		missing+=("$f")
	fi
done < <(git ls-files --cached --others --exclude-standard -- '*.go')

if ((${#missing[@]} > 0)); then
	echo "${#missing[@]} Go files lack the license header of $boilerplate; add it with hack/headers.sh --fix:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
