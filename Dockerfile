# syntax=docker/dockerfile:1
#
# The elector sidecar image: one static binary on distroless, non-root.
#
#   docker buildx build --platform=linux/amd64,linux/arm64 -t registry.example.com/elector:v0.1.0 --push .
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
# elector --version: docker build --build-arg VERSION=$(git describe --tags) --build-arg COMMIT=$(git rev-parse HEAD)
ARG VERSION="(devel)" COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.buildVersion=${VERSION} -X main.buildCommit=${COMMIT}" -o /out/elector ./cmd/elector

# static: no libc, shell or package manager; nonroot: uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/elector /elector
USER 65532:65532
# Exec form: elector is PID 1 and receives SIGTERM itself, so it releases
# the Lease at once when the Pod is deleted (the 0.5 image ran under bash,
# which never passed SIGTERM on).
ENTRYPOINT ["/elector"]
