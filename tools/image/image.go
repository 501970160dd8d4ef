/*
Copyright 2026 The elector Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package image builds the elector sidecar's OCI image from source, without
// a container engine: it cross-compiles cmd/elector for each platform, puts
// the static binary alone in one layer on an empty base, and gathers the
// images in one image index, written as an OCI image layout and as one
// `docker load` tarball per platform.
//
// The build is reproducible: every timestamp (the config's created time,
// the history and the layer's file) is SourceDateEpoch, the tar entry's
// owner and mode are fixed, and the binaries are built with -trimpath and
// without VCS stamping, so two builds of one commit with one Go toolchain
// give the same index digest.
//
// The Dockerfile at the repository root describes the same image for those
// who build with Docker; a test checks that it agrees with the constants
// here.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image, as the Dockerfile describes it too.
const (
	// Base is the image the binary goes on: none. The binary is static
	// (CGO_ENABLED=0) and needs no libc, shell, CA bundle or passwd file:
	// in a Pod it reads the API server's CA and its token from the
	// ServiceAccount mount.
	Base = "scratch"
	// Entrypoint is the binary's path in the image, run in exec form so
	// that elector is PID 1 and receives SIGTERM itself. At the root, as
	// the 0.5 image had it, and short to COPY --from into another image.
	Entrypoint = "/elector"
	// User is the numeric uid:gid the container runs as: the "nonroot" user
	// of distroless images, so runAsNonRoot holds without a passwd file.
	User = "65532:65532"
	// Package is the Go package of the binary, relative to the source.
	Package = "./cmd/elector"

	// Source, Title, Description and License are the values of the OCI
	// labels of the same names.
	Source      = "https://github.com/elector-dev/elector"
	Title       = "elector"
	Description = "Leader election on Kubernetes Leases: a drop-in successor to k8s.gcr.io/leader-elector:0.5"
	License     = "Apache-2.0"

	// DefaultRepository is the repository of the docker-load tarballs'
	// tag (elector:<version>); image-push names its own.
	DefaultRepository = "elector"
)

// The OCI annotation keys used as image labels.
const (
	LabelSource      = "org.opencontainers.image.source"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelLicenses    = "org.opencontainers.image.licenses"
	LabelCreated     = "org.opencontainers.image.created"
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
)

// LabelKeys are the keys of every label the image carries.
var LabelKeys = []string{
	LabelSource, LabelVersion, LabelRevision, LabelLicenses,
	LabelCreated, LabelTitle, LabelDescription,
}

// Platforms are the platforms of the image index, in its order: those
// Kubernetes publishes its own images for, less 32-bit arm.
var Platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
	{OS: "linux", Architecture: "ppc64le"},
	{OS: "linux", Architecture: "s390x"},
}

// Tags are the binary's build tags. nethttpomithttp2 leaves out net/http's
// bundled copy of HTTP/2: client-go speaks HTTP/2 to the API server
// through golang.org/x/net/http2, which it configures on its own
// transports, and the sidecar's HTTP server is plain HTTP/1.1; the copy
// was dead weight (0.5 MiB of binary, 0.3-0.4 MiB of RSS). make build
// uses the same tags.
const Tags = "nethttpomithttp2"

// LDFlags returns the -ldflags of the binary: stripped, and stamped with
// version and commit for `elector --version` (as make build stamps it).
func LDFlags(version, commit string) string {
	return fmt.Sprintf("-s -w -X main.buildVersion=%s -X main.buildCommit=%s", version, commit)
}

// Labels returns the image's labels.
func Labels(version, commit string, created time.Time) map[string]string {
	return map[string]string{
		LabelSource:      Source,
		LabelVersion:     version,
		LabelRevision:    commit,
		LabelLicenses:    License,
		LabelCreated:     created.UTC().Format(time.RFC3339),
		LabelTitle:       Title,
		LabelDescription: Description,
	}
}

// Meta is what an image says about itself besides its binary.
type Meta struct {
	// Version and Commit are stamped into the binary and the labels.
	Version, Commit string
	// Created is every timestamp of the image, from SOURCE_DATE_EPOCH.
	Created time.Time
}

func (m Meta) validate() error {
	if m.Version == "" {
		return errors.New("the version is empty: pass the one to stamp, e.g. the output of git describe --tags")
	}
	if m.Commit == "" {
		return errors.New("the commit is empty: pass the one to stamp, e.g. the output of git rev-parse HEAD")
	}
	if m.Created.Unix() < 0 {
		return fmt.Errorf("the creation time %s is before 1970: SOURCE_DATE_EPOCH must be a non-negative number of seconds", m.Created.UTC().Format(time.RFC3339))
	}
	return nil
}

// Tag returns the image tag for version: version itself when it is a valid
// tag (v0.1.0, v0.1.0-3-gabcdef-dirty), else with every other character
// replaced by '-' ("(devel)" becomes "devel").
func Tag(version string) string {
	t := strings.Trim(invalidTagChars.ReplaceAllString(version, "-"), "-.")
	if t == "" {
		return "latest"
	}
	if len(t) > maxTagLen {
		t = t[:maxTagLen]
	}
	return t
}

var invalidTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// maxTagLen is the longest tag the distribution spec allows.
const maxTagLen = 128

// Binary is one platform's binary, the content of its image's layer.
type Binary struct {
	Platform v1.Platform
	// Path is the file on disk.
	Path string
}

// Assemble builds one image per binary and the index of them all, in
// order. It is deterministic: the same binaries and meta give the same
// digests.
func Assemble(bins []Binary, meta Meta) (v1.ImageIndex, error) {
	if err := meta.validate(); err != nil {
		return nil, err
	}
	if len(bins) == 0 {
		return nil, errors.New("unable to assemble the image index: no binaries")
	}
	adds := make([]mutate.IndexAddendum, 0, len(bins))
	for _, b := range bins {
		img, err := platformImage(b, meta)
		if err != nil {
			return nil, err
		}
		p := b.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, adds...), nil
}

func platformImage(b Binary, meta Meta) (v1.Image, error) {
	layer, err := binaryLayer(b.Path, meta.Created)
	if err != nil {
		return nil, fmt.Errorf("unable to build the layer of %s: %w", platformString(b.Platform), err)
	}
	created := v1.Time{Time: meta.Created.UTC()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: b.Platform.Architecture,
		OS:           b.Platform.OS,
		Variant:      b.Platform.Variant,
		Created:      created,
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       User,
			Labels:     Labels(meta.Version, meta.Commit, meta.Created),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("unable to set the config of %s: %w", platformString(b.Platform), err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "COPY elector " + Entrypoint + " # tools/image",
			Comment:   "elector " + meta.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("unable to add the layer of %s: %w", platformString(b.Platform), err)
	}
	return img, nil
}

// binaryLayer is a gzipped tar holding the file at path as Entrypoint,
// root-owned and executable by all, with the modification time mtime.
func binaryLayer(path string, mtime time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(Entrypoint, "/"),
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  mtime.UTC(),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tarball := buf.Bytes()
	return tarballLayer(tarball)
}

func tarballLayer(data []byte) (v1.Layer, error) {
	l, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer),
		// The default level: a third smaller than gzip's fastest for
		// these binaries, at a second or so per platform.
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		// Compress once: the digest, the layout and the tarball all
		// read the compressed layer.
		tarball.WithCompressedCaching,
	)
	if err != nil {
		return nil, err
	}
	// Only v1.Layer's methods: the tarball layer's own Descriptor has an
	// empty, non-nil Annotations map, which the manifest's JSON drops, so
	// that the manifest ggcr computes and its raw form differ and
	// validate.Image fails.
	return plainLayer{l}, nil
}

// plainLayer hides every method of a layer but v1.Layer's.
type plainLayer struct{ v1.Layer }

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatforms parses a comma-separated list of os/arch[/variant], each
// one of Platforms.
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for _, p := range Platforms {
			if platformString(p) == f {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			var all []string
			for _, p := range Platforms {
				all = append(all, platformString(p))
			}
			return nil, fmt.Errorf("unknown platform %q: pick from %s", f, strings.Join(all, ","))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no platform: pick one or more of the defaults, comma-separated")
	}
	return out, nil
}

// CompileOptions say how to compile the binaries.
type CompileOptions struct {
	// Source is the repository root: the module holding Package.
	Source string
	// Dir receives one binary per platform, dir/<os>_<arch>/elector.
	Dir string
	// Go is the go command; "go" when empty.
	Go string
	// Logger reports each platform's compile; slog.Default() when nil.
	Logger *slog.Logger
}

// Compile cross-compiles Package for each platform: static
// (CGO_ENABLED=0), -trimpath, without VCS stamping, with Tags and LDFlags.
func Compile(ctx context.Context, o CompileOptions, meta Meta, platforms []v1.Platform) ([]Binary, error) {
	if err := meta.validate(); err != nil {
		return nil, err
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	bins := make([]Binary, 0, len(platforms))
	for _, p := range platforms {
		out := filepath.Join(o.Dir, p.OS+"_"+p.Architecture, "elector")
		start := time.Now()
		cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-tags="+Tags,
			"-ldflags="+LDFlags(meta.Version, meta.Commit), "-o", out, Package)
		cmd.Dir = o.Source
		// GOWORK=off: a go.work of the caller must not change the
		// module's dependency graph. GOFLAGS is kept (the module cache
		// mode, a proxy), but the flags above win.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOWORK=off")
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("unable to compile elector for %s: %w", platformString(p), ctx.Err())
			}
			return nil, fmt.Errorf("unable to compile elector for %s (go build in %s): %w\n%s", platformString(p), o.Source, err, output.String())
		}
		log.Info("compiled", "platform", platformString(p), "duration", time.Since(start).Round(time.Millisecond))
		bins = append(bins, Binary{Platform: p, Path: out})
	}
	return bins, nil
}

// Layout is where Write puts its output.
type Layout struct {
	// Dir is the output directory.
	Dir string
}

// OCIDir is the OCI image layout: index.json names the image index,
// annotated with its tag (org.opencontainers.image.ref.name).
func (l Layout) OCIDir() string { return filepath.Join(l.Dir, "oci") }

// Tarball is the `docker load` tarball of one platform's image.
func (l Layout) Tarball(p v1.Platform) string {
	return filepath.Join(l.Dir, "elector-"+p.OS+"-"+p.Architecture+".tar")
}

// DigestFile holds the index digest, as the build printed it.
func (l Layout) DigestFile() string { return filepath.Join(l.Dir, "digest") }
