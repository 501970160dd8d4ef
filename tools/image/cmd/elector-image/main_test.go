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

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	image "github.com/elector-dev/elector/tools/image"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runTool runs the command with args and returns its exit code and output.
func runTool(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	for _, tc := range []struct {
		name string
		args []string
		want string // in the one line on stderr
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"bild"}, `unknown command "bild"`},
		{"unknown flag", []string{"build", "--verison=v1"}, "flag provided but not defined: -verison"}, //nolint:misspell // a mistyped flag on purpose
		{"argument", []string{"build", "--version=v1", "--commit=c", "extra"}, `unexpected argument "extra"`},
		{"no version", []string{"build", "--commit=c"}, "--version is required"},
		{"no commit", []string{"build", "--version=v1"}, "--commit is required"},
		{"platform", []string{"build", "--version=v1", "--commit=c", "--platforms=linux/riscv64"}, `unknown platform "linux/riscv64"`},
		{"epoch", []string{"build", "--version=v1", "--commit=c", "--source-date-epoch=yesterday"}, `SOURCE_DATE_EPOCH "yesterday" is not a number`},
		{"negative epoch", []string{"build", "--version=v1", "--commit=c", "--source-date-epoch=-5"}, "is not a number of seconds"},
		{"no git", []string{"build", "--version=v1", "--commit=c", "--source=" + t.TempDir()}, "SOURCE_DATE_EPOCH is unset and git has no commit time"},
		{"repository", []string{"build", "--version=v1", "--commit=c", "--source-date-epoch=0", "--repository=Bad Name"}, `--repository "Bad Name" is not a valid`},
		{"no registry", []string{"push"}, "--registry is required"},
		{"registry with tag", []string{"push", "--registry=ghcr.io/x/elector:v1"}, "has a tag or digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runTool(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], prog+": ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q, want one line %q containing %q", stderr, prog+": ...", tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	if code, stdout, _ := runTool(t, "--help"); code != exitOK || !strings.Contains(stdout, "build|push") {
		t.Errorf("--help: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := runTool(t, "build", "-h"); code != exitOK || !strings.Contains(stderr, "-source-date-epoch") {
		t.Errorf("build -h: exit %d, stderr %q", code, stderr)
	}
}

// fakeSource is a module with a cmd/elector that prints its ldflags.
func fakeSource(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/fake\n\ngo 1.26.0\n",
		"cmd/elector/main.go": `package main

import "fmt"

var buildVersion, buildCommit string

func main() { fmt.Println(buildVersion, buildCommit) }
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildAndPush builds a stand-in cmd/elector for this machine's
// platform twice (same digest), runs the binary from the layer, and pushes
// the layout to an in-process registry.
func TestBuildAndPush(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("the built binary runs on linux only; this is %s", runtime.GOOS)
	}
	src := fakeSource(t)
	out := t.TempDir()
	args := []string{
		"build", "--source=" + src, "--out=" + out, "--version=v9.8.7", "--commit=0123abc",
		"--source-date-epoch=1700000000", "--platforms=linux/" + runtime.GOARCH,
	}
	code, stdout, stderr := runTool(t, args...)
	if code != exitOK {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	digest := strings.TrimSpace(stdout)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("build printed %q, want the index digest", stdout)
	}
	// Again, into another directory: the same digest.
	args[2] = "--out=" + t.TempDir()
	if code, again, stderr := runTool(t, args...); code != exitOK || strings.TrimSpace(again) != digest {
		t.Errorf("second build: exit %d, digest %q, want %s\n%s", code, again, digest, stderr)
	}

	idx, tag, err := image.ReadLayout(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != digest || tag != "v9.8.7" {
		t.Errorf("the layout holds %s tagged %q, want %s tagged v9.8.7", d, tag, digest)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	bin := extract(t, layers[0])
	if got, err := exec.Command(bin).Output(); err != nil || string(got) != "v9.8.7 0123abc\n" {
		t.Errorf("the binary printed %q (%v), want the stamped version and commit", got, err)
	}

	// Push to an in-process registry, with no docker config.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/elector"
	code, stdout, stderr = runTool(t, "push", "--out="+out, "--registry="+repo)
	if code != exitOK {
		t.Fatalf("push: exit %d\n%s", code, stderr)
	}
	if want := repo + "@" + digest; strings.TrimSpace(stdout) != want {
		t.Errorf("push printed %q, want %s", stdout, want)
	}
	for _, ref := range []string{repo + "@" + digest, repo + ":v9.8.7"} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Index(r)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if d, _ := pulled.Digest(); d.String() != digest {
			t.Errorf("pulled %s: digest %s, want %s", ref, d, digest)
		}
	}
	srv.CloseClientConnections()
}

func TestPushWithoutBuild(t *testing.T) {
	code, stdout, stderr := runTool(t, "push", "--out="+t.TempDir(), "--registry=localhost:1/elector")
	if code != exitFailed || stdout != "" || !strings.Contains(stderr, "run make image first") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and one line saying to run make image", code, stdout, stderr, exitFailed)
	}
}

// extract writes the layer's one file to a temporary directory.
func extract(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
},
) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if "/"+hdr.Name != image.Entrypoint {
		t.Fatalf("the layer holds %s, want %s", hdr.Name, image.Entrypoint)
	}
	path := filepath.Join(t.TempDir(), "elector")
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
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("the layer has more than one file (%v)", err)
	}
	return path
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
