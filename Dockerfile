# syntax=docker/dockerfile:1
#
# The elector sidecar image for those who build with Docker: one static
# binary on an empty base, non-root. `make image` builds the same image
# without a container engine (tools/image), reproducibly; a test
# (tools/image/dockerfile_test.go) checks that this file agrees with it:
# base, entrypoint, user, labels and platforms.
#
# The platforms of the image index:
#
#   docker buildx build --platform=linux/amd64,linux/arm64,linux/ppc64le,linux/s390x \
#     --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     -t registry.example.com/elector:v0.1.0 --push .
#
# The Go toolchain runs on the build machine's platform and cross-compiles
# (CGO_ENABLED=0), so multi-arch builds need no emulation.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS TARGETARCH
# elector --version: the build args above; the same ldflags as make build.
ARG VERSION="(devel)" COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -tags=nethttpomithttp2 -ldflags="-s -w -X main.buildVersion=${VERSION} -X main.buildCommit=${COMMIT}" -o /out/elector ./cmd/elector

# Empty: the binary is static and needs no libc, shell, CA bundle or passwd
# file (in a Pod it reads the API server's CA and its token from the
# ServiceAccount mount).
FROM scratch
ARG VERSION="(devel)" COMMIT=unknown CREATED=1970-01-01T00:00:00Z
COPY --from=build /out/elector /elector
# Numeric uid:gid (distroless's "nonroot"), so runAsNonRoot holds without a
# passwd file.
USER 65532:65532
LABEL org.opencontainers.image.source="https://github.com/elector-dev/elector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.title="elector" \
      org.opencontainers.image.description="Leader election on Kubernetes Leases: a drop-in successor to k8s.gcr.io/leader-elector:0.5"
# Exec form: elector is PID 1 and receives SIGTERM itself, so it releases
# the Lease at once when the Pod is deleted (the 0.5 image ran under bash,
# which never passed SIGTERM on).
ENTRYPOINT ["/elector"]
