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

package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/elector-dev/elector/test/internal/proc"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// The image test's build: a version and commit no other build has, and a
// fixed SOURCE_DATE_EPOCH.
const (
	imageVersion = "v0.0.0-imagetest"
	imageCommit  = "0123456789abcdef0123456789abcdef01234567"
	imageEpoch   = "1700000000" // 2023-11-14T22:13:20Z
)

// TestImage builds the sidecar's image from this repository with the
// image tool, as make image does (every platform), twice: the same digest.
// It pushes it as make image-push does to an in-process registry, pulls it
// back by digest, validates the index and its images, checks each
// platform's config, then extracts this machine's binary from its image
// and runs it: --version prints the stamped version, and with a
// ServiceAccount of deploy/base it wins the election.
//
// The tool runs as its own process, built without -race: under the race
// detector gzip alone takes a minute per build.
func TestImage(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	root, err := sidecar.RepoDir()
	if err != nil {
		t.Fatal(err)
	}
	// Builds: long enough for four cold cross-compiles on a busy machine.
	buildCtx := func() context.Context {
		c, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
		t.Cleanup(cancel)
		return c
	}
	tool := filepath.Join(t.TempDir(), "elector-image")
	start := time.Now()
	if err := proc.GoBuild(buildCtx(), "elector-image", filepath.Join(root, "tools", "image"), "build", "-o", tool, "./cmd/elector-image"); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the image tool in %s", ms(time.Since(start)))
	runTool := func(args ...string) string {
		t.Helper()
		c := buildCtx()
		cmd := exec.CommandContext(c, tool, args...)
		// No docker config: anonymous, as the in-process registry wants.
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		t.Logf("elector-image %s: %s\n%s", args[0], ms(time.Since(start)), stderr.String())
		if err != nil {
			t.Fatalf("elector-image %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	build := func() (digest, out string) {
		out = t.TempDir()
		return runTool("build", "--source="+root, "--out="+out, "--version="+imageVersion,
			"--commit="+imageCommit, "--source-date-epoch="+imageEpoch), out
	}
	digest, out := build()
	if again, _ := build(); again != digest {
		t.Errorf("two builds of one commit and SOURCE_DATE_EPOCH: %s and %s", digest, again)
	}

	// Push to an in-process registry and pull back by digest.
	c := ctx(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/elector"
	if pushed, want := runTool("push", "--out="+out, "--registry="+repo), repo+"@"+digest; pushed != want {
		t.Fatalf("push printed %q, want %s", pushed, want)
	}
	ref, err := name.NewDigest(repo + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(ref, remote.WithContext(c))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if d, err := pulled.Digest(); err != nil || d.String() != digest {
		t.Fatalf("pulled %s: digest %s (%v)", ref, d, err)
	}
	start = time.Now()
	if err := validate.Index(pulled); err != nil {
		t.Errorf("validate.Index of the pulled index: %v", err)
	}
	t.Logf("validated the pulled index and its images in %s", ms(time.Since(start)))
	// The tag is the version.
	if d, err := remote.Head(ref.Context().Tag(imageVersion), remote.WithContext(c)); err != nil || d.Digest.String() != digest {
		t.Errorf("the tag %s names %v (%v), want %s", imageVersion, d, err, digest)
	}
	bin := checkPulled(t, pulled)

	// The binary as the image runs it.
	version, err := exec.CommandContext(c, bin, "--version").CombinedOutput()
	if want := imageVersion + " (commit " + imageCommit + ", " + runtime.Version() + ")"; err != nil || !strings.Contains(string(version), want) {
		t.Errorf("elector --version from the image printed %q (%v), want %q", version, err, want)
	}
	m := render(t, "base")
	n := setup(t, m)
	r, err := sidecar.Start(sidecar.Options{
		Binary: bin, Kubeconfig: n.Kubeconfig,
		PodName: "image-0", PodNamespace: n.Name,
		Args: baseArgs(t, m), Log: t.Output(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	if _, err := sidecar.WaitUntilLeads(ctx(t), watch(t, r)); err != nil {
		t.Fatalf("the image's elector never led: %v\n%s", err, r.Output())
	}
	agree(t, r.Name, r)
	srv.CloseClientConnections()
}

// checkPulled checks the platforms and configs of the pulled index, and
// returns the path of this machine's binary, extracted from its image.
func checkPulled(t *testing.T, idx v1.ImageIndex) string {
	t.Helper()
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", mt, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		if d.Platform != nil {
			platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"}; !slices.Equal(platforms, want) {
		t.Fatalf("the index has platforms %v, want %v", platforms, want)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":      "https://github.com/elector-dev/elector",
		"org.opencontainers.image.version":     imageVersion,
		"org.opencontainers.image.revision":    imageCommit,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     "2023-11-14T22:13:20Z",
		"org.opencontainers.image.title":       "elector",
		"org.opencontainers.image.description": "Leader election on Kubernetes Leases: a drop-in successor to k8s.gcr.io/leader-elector:0.5",
	}
	var bin string
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		if cf.OS != d.Platform.OS || cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		if !slices.Equal(cf.Config.Entrypoint, []string{"/elector"}) || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q, want [/elector] and none", p, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		if cf.Config.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", p, cf.Config.User)
		}
		if !maps.Equal(cf.Config.Labels, wantLabels) {
			t.Errorf("%s: labels %v, want %v", p, cf.Config.Labels, wantLabels)
		}
		if got := cf.Created.UTC().Format(time.RFC3339); got != "2023-11-14T22:13:20Z" {
			t.Errorf("%s: created %s, want 2023-11-14T22:13:20Z (SOURCE_DATE_EPOCH %s)", p, got, imageEpoch)
		}
		if layers, err := img.Layers(); err != nil || len(layers) != 1 {
			t.Errorf("%s: %d layers (%v), want 1", p, len(layers), err)
		}
		if d.Platform.OS == runtime.GOOS && d.Platform.Architecture == runtime.GOARCH {
			bin = extractEntrypoint(t, img)
		}
	}
	if bin == "" {
		t.Fatalf("the index has no image for this machine, %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return bin
}

// extractEntrypoint writes the image's /elector to a file, from its
// flattened filesystem, which must hold nothing else.
func extractEntrypoint(t *testing.T, img v1.Image) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	path := filepath.Join(t.TempDir(), "elector")
	var files []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, hdr.Name)
		if "/"+hdr.Name != "/elector" {
			continue
		}
		if hdr.Mode&0o111 != 0o111 || hdr.Uid != 0 {
			t.Errorf("/elector: mode %o uid %d, want executable by all, owned by root", hdr.Mode, hdr.Uid)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(files, []string{"elector"}) {
		t.Fatalf("the image's filesystem holds %v, want /elector alone", files)
	}
	return path
}
