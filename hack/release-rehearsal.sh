#!/usr/bin/env bash
# The release, rehearsed end to end without publishing anything
# (make release-rehearsal; .ci/run runs it):
#
#  1. a clean clone of HEAD in a temporary directory, and in it the release
#     step a maintainer runs, make release-prep VERSION=$VERSION (CHANGELOG
#     stamped, nested modules on the released root with no replace, every
#     module tagged);
#  2. a Go module proxy of the tags (tools/release proxy: module zips by
#     golang.org/x/mod/zip), served as GOPROXY=file://...; it refuses a
#     tagged nested module whose go.mod still has a replace directive;
#  3. from a module outside the repository, with no replace, as a user:
#     go get the library and build the README's snippet; go get ctrl and
#     build a controller-runtime program switched by its one line;
#     go install the sidecar and the kubectl plugin, whose --version must
#     say $VERSION;
#  4. a CycloneDX software bill of materials of both binaries
#     (cyclonedx-gomod), which must name the released modules;
#  5. the plugin's archive of every platform .goreleaser.yaml builds
#     (linux, darwin and windows on amd64 and arm64, less windows/arm64),
#     built from the tag as goreleaser builds them, the krew manifest
#     generated from deploy/krew/elector.yaml with each archive's sha256
#     (every platform of the template must have its archive), and kubectl
#     krew install --manifest --archive of this machine's into a temporary
#     KREW_ROOT; kubectl elector --version must say $VERSION;
#  6. the image, built from the tag as make image builds it (every
#     platform), pushed by digest as make image-push pushes it to an
#     in-process registry (tools/release registry: go-containerregistry's,
#     with the OCI 1.1 referrers API); the digest must resolve there;
#  7. a CycloneDX SBOM of the sidecar binary in the pushed image, attached
#     as an OCI referrer of the image index (artifactType
#     application/vnd.cyclonedx+json); the referrers API must list it and
#     it must name the module at $VERSION;
#  8. a key-based signature of the image (cosign's format, signed and
#     verified with github.com/sigstore/sigstore: tools/release sign,
#     verify), which must verify with the public key and not with another;
#  9. the examples' images: entry pinned to the image by digest (tools/
#     release pin); kubectl kustomize of deploy/examples/nginx and
#     production must run exactly <registry>/elector@sha256:….
#
# Our modules come only from the file proxy (GONOSUMDB: they are in no
# checksum database yet); third-party modules come from this machine's
# module cache, then from the module proxy of `go env GOPROXY`. A separate
# module cache keeps the rehearsal's $VERSION out of the real one.
#
# KREW and CYCLONEDX_GOMOD are the tools (the Makefile builds them into
# the tool cache); kubectl (for kubectl kustomize) and curl must be on
# PATH. Every command is bounded by timeout(1).
#
# REHEARSAL_TAG_ONLY=1 tags HEAD as it is, without the release step, and
# serves it unchecked: the rehearsal must then fail (a nested module that
# still needs replace to resolve the root).
set -euo pipefail

VERSION=${VERSION:-v0.1.0}
KREW=${KREW:?KREW must name the krew binary (make release-rehearsal builds it)}
CYCLONEDX_GOMOD=${CYCLONEDX_GOMOD:?CYCLONEDX_GOMOD must name cyclonedx-gomod (make release-rehearsal builds it)}
GO=${GO:-go}
# A cold build cache on a busy machine compiles client-go and
# controller-runtime in the first build step.
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/elector-rehearsal.XXXXXX")
registry_pid=
cleanup() {
	if [[ -n "$registry_pid" ]]; then
		kill "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
step() { printf '\n== [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }
# run prints a command and runs it, bounded.
run() {
	printf '+ %s\n' "$*" >&2
	local rc=0
	timeout "$STEP_TIMEOUT" "$@" || rc=$?
	if ((rc == 124)); then
		printf 'release rehearsal: FAIL: timed out after %ss (STEP_TIMEOUT): %s\n' "$STEP_TIMEOUT" "$*" >&2
	fi
	return "$rc"
}
fail() {
	printf 'release rehearsal: FAIL: %s\n' "$*" >&2
	exit 1
}

command -v kubectl >/dev/null || fail "kubectl is not on PATH: the rehearsal renders the examples with kubectl kustomize"
command -v curl >/dev/null || fail "curl is not on PATH: the rehearsal asks the registry's API with curl"

normal_proxy=$($GO env GOPROXY)
normal_cache=$($GO env GOMODCACHE)

step "a clean clone of HEAD ($(git -C "$repo" rev-parse --short HEAD)) in $work/repo"
run git clone -q --no-local "$repo" "$work/repo"
cd "$work/repo"
export GIT_AUTHOR_NAME="elector release rehearsal" GIT_AUTHOR_EMAIL="release@elector.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

step "the release tool and the image tool"
(cd tools/release && run env GOWORK=off $GO build -o "$work/bin/release" .)
(cd tools/image && run env GOWORK=off $GO build -o "$work/bin/elector-image" ./cmd/elector-image)
release=$work/bin/release
elector_image=$work/bin/elector-image

if [[ "${REHEARSAL_TAG_ONLY:-}" == 1 ]]; then
	step "tags on HEAD as it is, without the release step (expected to fail below)"
	for t in "$VERSION" "ctrl/$VERSION" "cmd/kubectl-elector/$VERSION"; do run git tag "$t"; done
	proxy_flags=(--unchecked)
else
	step "the release step: make release-prep VERSION=$VERSION"
	run make --no-print-directory release-prep VERSION="$VERSION" RELEASE_DATE=2026-12-07
	run git log --oneline -3
	run git tag -l "*$VERSION"
	proxy_flags=()
fi

step "a module proxy of the tags"
run "$release" proxy --repo=. --version="$VERSION" --out="$work/proxy" "${proxy_flags[@]}"

# The user's environment: our modules from the file proxy, nothing else of
# the repository.
goproxy="file://$work/proxy,file://$normal_cache/cache/download,$normal_proxy"

if [[ "${REHEARSAL_TAG_ONLY:-}" != 1 ]]; then
	step "the tagged nested modules are tidy against the served root (go.sum holds its hash)"
	run git worktree add -q "$work/at-tag/root" "$VERSION"
	for m in ctrl cmd/kubectl-elector; do
		run git worktree add -q "$work/at-tag/$m" "$m/$VERSION"
		(cd "$work/at-tag/$m/$m" && run env GOWORK=off GOMODCACHE="$work/modcache" GOFLAGS=-modcacherw \
			GOPROXY="$goproxy" GONOSUMDB=github.com/elector-dev $GO mod tidy -diff)
	done
fi

export GOWORK=off
export GOMODCACHE=$work/modcache
# -trimpath: builds from this separate module cache share the build cache
# with those of the real one (without it a package's directory is part of
# its cache key, and every dependency would be compiled again).
export GOFLAGS="-modcacherw -trimpath"
export GOPROXY=$goproxy
export GONOSUMDB=github.com/elector-dev
export GOBIN=$work/gobin
unset GOPRIVATE GONOPROXY

mkdir -p "$work/user/lib" "$work/user/operator"

step "go get the library and build the README's snippet"
cd "$work/user/lib"
run $GO mod init example.com/user/lib
run $GO get "github.com/elector-dev/elector@$VERSION"
snippet=$(awk '/^## The library/ {f = 1} f && /^```go/ {g = 1; next} g && /^```/ {exit} g {print "\t" $0}' "$work/repo/README.md")
[[ -n "$snippet" ]] || fail "README.md has no Go snippet under \"## The library\""
cat >main.go <<EOF
package main

import (
	"context"
	"os"

	"github.com/elector-dev/elector"
	"k8s.io/client-go/kubernetes"
)

func reconcileUntil(ctx context.Context, _ elector.Token) error {
	<-ctx.Done()
	return nil
}

// run holds README.md's library snippet as it is.
func run(ctx context.Context, clientset kubernetes.Interface) error {
$snippet
	return err
}

func main() {
	_ = run
	os.Exit(0)
}
EOF
run $GO mod tidy
run grep -n 'elector-dev' go.mod
grep -q '^replace' go.mod && fail "the user's go.mod has a replace directive"
run $GO build -o "$work/bin/lib-user" .

step "go get ctrl and switch a controller-runtime manager by one line"
cd "$work/user/operator"
run $GO mod init example.com/user/operator
run $GO get "github.com/elector-dev/elector/ctrl@$VERSION"
cat >main.go <<'EOF'
package main

import (
	"os"

	electorctrl "github.com/elector-dev/elector/ctrl"
	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	cfg := ctrl.GetConfigOrDie()
	opts := ctrl.Options{LeaderElection: true, LeaderElectionID: "my-operator", LeaderElectionNamespace: "default"}
	mgr, err := electorctrl.NewManager(cfg, opts)
	if err != nil {
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		os.Exit(1)
	}
}
EOF
run $GO mod tidy
run $GO build -o "$work/bin/operator-after" .
run grep -n 'elector-dev' go.mod
grep -q '^replace' go.mod && fail "the user's go.mod has a replace directive"
# The same program before the switch builds too: the one line (and the
# import) is all that differs.
cp main.go main.go.after
sed -i -e 's/electorctrl\.NewManager(cfg, opts)/ctrl.NewManager(cfg, opts)/' -e '/^\telectorctrl "github.com\/elector-dev\/elector\/ctrl"$/d' main.go
diff -u main.go main.go.after || true
run $GO build -o "$work/bin/operator-before" .
mv main.go.after main.go

step "go install the sidecar and the kubectl plugin"
cd "$work/user"
run $GO install "github.com/elector-dev/elector/cmd/elector@$VERSION"
run $GO install "github.com/elector-dev/elector/cmd/kubectl-elector@$VERSION"
for b in elector kubectl-elector; do
	out=$(run "$GOBIN/$b" --version)
	echo "$out"
	[[ "$out" == *"$VERSION ("* ]] || fail "$b --version says \"$out\", not $VERSION"
done

step "software bills of materials of the binaries (CycloneDX)"
mkdir -p "$work/dist"
for b in elector kubectl-elector; do
	run "$CYCLONEDX_GOMOD" bin -json -output "$work/dist/${b}_${VERSION}.cdx.json" "$GOBIN/$b"
	for want in "pkg:golang/github.com/elector-dev/elector@$VERSION" "pkg:golang/k8s.io/client-go@"; do
		grep -q "$want" "$work/dist/${b}_${VERSION}.cdx.json" || fail "the SBOM of $b names no $want"
	done
	grep -o '"bomFormat": *"[^"]*"\|"specVersion": *"[^"]*"' "$work/dist/${b}_${VERSION}.cdx.json" | tr '\n' ' '
	echo "$(grep -c '"purl"' "$work/dist/${b}_${VERSION}.cdx.json") package URLs in ${b}_${VERSION}.cdx.json"
done

step "the plugin's archives of every platform, built from the tag as .goreleaser.yaml builds them"
goos=$($GO env GOOS)
goarch=$($GO env GOARCH)
commit=$(git -C "$work/repo" rev-parse "$VERSION^{commit}")
# .goreleaser.yaml's kubectl-elector build: goos linux, darwin, windows;
# goarch amd64, arm64; less windows/arm64.
plugin_platforms="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"
mkdir -p "$work/dist"
for p in $plugin_platforms; do
	os=${p%/*} arch=${p#*/} exe=
	[[ "$os" == windows ]] && exe=.exe
	stage=$work/stage/${os}_${arch}
	mkdir -p "$stage"
	(cd "$work/at-tag/cmd/kubectl-elector/cmd/kubectl-elector" && run env CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" \
		$GO build -trimpath -ldflags="-s -w -X main.buildVersion=$VERSION -X main.buildCommit=$commit" \
		-o "$stage/kubectl-elector$exe" .)
	cp "$work/repo/LICENSE" "$stage/"
	if [[ "$os" == windows ]]; then
		(cd "$stage" && run zip -q -X "$work/dist/kubectl-elector_${VERSION}_${os}_${arch}.zip" "kubectl-elector$exe" LICENSE)
	else
		run tar -C "$stage" -czf "$work/dist/kubectl-elector_${VERSION}_${os}_${arch}.tar.gz" kubectl-elector LICENSE
	fi
done
(cd "$work/dist" && sha256sum kubectl-elector_*)

step "the krew manifest of every platform and kubectl krew install"
archive=$work/dist/kubectl-elector_${VERSION}_${goos}_${goarch}.tar.gz
[[ -f "$archive" ]] || fail "no plugin archive for this machine ($goos/$goarch) among $plugin_platforms"
run "$release" krew --template="$work/repo/deploy/krew/elector.yaml" --version="$VERSION" \
	--dist="$work/dist" --out="$work/elector.yaml"
grep -E '^    (uri|sha256):' "$work/elector.yaml"
for p in $plugin_platforms; do
	grep -q "uri: .*_${p%/*}_${p#*/}\." "$work/elector.yaml" || fail "the krew manifest has no $p"
done
# The sha256 binds the manifest to this archive: krew refuses another one.
stage=$work/stage/${goos}_${goarch}
printf 'tampered\n' >>"$stage/LICENSE"
run tar -C "$stage" -czf "$work/tampered.tar.gz" kubectl-elector LICENSE
if out=$(KREW_ROOT=$work/krew-tampered run "$KREW" install --manifest="$work/elector.yaml" --archive="$work/tampered.tar.gz" </dev/null 2>&1); then
	fail "krew installed an archive whose sha256 is not the manifest's"
fi
[[ "$out" == *"checksum does not match"* ]] || fail "krew refused the tampered archive for another reason: $out"
echo "krew refuses an archive that is not the manifest's: checksum does not match"
export KREW_ROOT=$work/krew
run "$KREW" install --manifest="$work/elector.yaml" --archive="$archive" </dev/null
export PATH="$KREW_ROOT/bin:$PATH"
out=$(run kubectl elector --version)
echo "$out"
[[ "$out" == *"$VERSION ("* ]] || fail "kubectl elector --version says \"$out\", not $VERSION"

step "the image of the tag, pushed by digest to an in-process registry"
"$release" registry --addr-file="$work/registry.addr" >"$work/registry.log" 2>&1 &
registry_pid=$!
# Bounded: the registry writes its address once it listens.
for _ in $(seq 300); do
	[[ -s "$work/registry.addr" ]] && break
	kill -0 "$registry_pid" 2>/dev/null || fail "the registry exited: $(cat "$work/registry.log")"
	sleep 0.1
done
[[ -s "$work/registry.addr" ]] || fail "the registry did not listen within 30 s: $(cat "$work/registry.log")"
reg=$(cat "$work/registry.addr")
cat "$work/registry.log"
built=$(run "$elector_image" build --source="$work/at-tag/root" --out="$work/image" --version="$VERSION" \
	--commit="$commit" --source-date-epoch="$(git -C "$work/repo" log -1 --format=%ct "$VERSION")")
# No docker config: anonymous, as the in-process registry wants.
ref=$(DOCKER_CONFIG=$work/docker run "$elector_image" push --out="$work/image" --registry="$reg/elector")
digest=${ref#*@}
echo "built $built; pushed $ref"
[[ "$digest" == "$built" ]] || fail "pushed $ref, but the build's index digest is $built"
# The digest resolves: the distribution API, as a kubelet asks it.
run curl -sSfI -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$reg/v2/elector/manifests/$digest" |
	tr -d '\r' | grep -i -E '^(HTTP|docker-content-digest|content-type)' | tee "$work/head.txt"
grep -qi "^docker-content-digest: $digest\$" "$work/head.txt" || fail "the registry does not resolve $digest"

step "the SBOM of the image's binary, attached as an OCI referrer"
run "$release" extract --image="$ref" --platform="linux/$goarch" --file=/elector --out="$work/image-elector"
image_sbom=$work/dist/elector_${VERSION}_image.cdx.json
# -version: the image's binary is built from the tag's tree, whose build
# info says (devel); the SBOM names the release.
run "$CYCLONEDX_GOMOD" bin -json -version "$VERSION" -output "$image_sbom" "$work/image-elector"
run "$release" attach-sbom --image="$ref" --sbom="$image_sbom"
echo "GET /v2/elector/referrers/$digest:"
run curl -sSf "http://$reg/v2/elector/referrers/$digest"
echo
# go-containerregistry's registry lists a referrer's config media type as
# its artifactType (the empty config's, here); release referrers reads
# each referrer's manifest and checks its own artifactType and subject.
run "$release" referrers --image="$ref" --out="$work/sbom-from-registry.cdx.json"
cmp "$image_sbom" "$work/sbom-from-registry.cdx.json" || fail "the referrer's SBOM is not the one attached"
grep -q "pkg:golang/github.com/elector-dev/elector@$VERSION" "$work/sbom-from-registry.cdx.json" ||
	fail "the image's SBOM names no pkg:golang/github.com/elector-dev/elector@$VERSION"
echo "the referrer's SBOM names pkg:golang/github.com/elector-dev/elector@$VERSION ($(grep -c '"purl"' "$work/sbom-from-registry.cdx.json") package URLs)"

step "the image signed with a key, and verified"
run "$release" keygen --key="$work/cosign.key" --pub="$work/cosign.pub"
run "$release" sign --image="$ref" --key="$work/cosign.key"
run "$release" verify --image="$ref" --pub="$work/cosign.pub"
run "$release" keygen --key="$work/other.key" --pub="$work/other.pub"
if out=$("$release" verify --image="$ref" --pub="$work/other.pub" 2>&1); then
	fail "the signature verified with another key"
fi
echo "another key: refused: $out"

step "the examples pinned to the image by digest"
cd "$work/at-tag/root"
run "$release" pin --image="$ref" deploy/examples/nginx/kustomization.yaml
git diff deploy/examples/nginx/kustomization.yaml
for ex in nginx production; do
	images=$(run kubectl kustomize "deploy/examples/$ex" | grep -E '^ +(- )?image: ' | sed -E 's/^ +(- )?image: //' | sort -u)
	echo "deploy/examples/$ex runs:" $images
	grep -qx "$ref" <<<"$images" || fail "kubectl kustomize deploy/examples/$ex runs no $ref"
	! grep -q 'registry.example.com/elector' <<<"$images" || fail "deploy/examples/$ex still runs registry.example.com/elector"
done

step "release rehearsal of $VERSION: PASS"
