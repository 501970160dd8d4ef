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
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestStampChangelogFirstRelease(t *testing.T) {
	in := "# Changelog\n\nintro\n\n## [Unreleased]\n\n### Added\n- a thing\n\n[Unreleased]: https://github.com/elector-dev/elector/commits/main\n"
	got, err := stampChangelog(in, "v0.1.0", "2026-12-07")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Changelog\n\nintro\n\n## [Unreleased]\n\n## [0.1.0] - 2026-12-07\n\n### Added\n- a thing\n\n" +
		"[Unreleased]: https://github.com/elector-dev/elector/compare/v0.1.0...HEAD\n" +
		"[0.1.0]: https://github.com/elector-dev/elector/releases/tag/v0.1.0\n"
	if got != want {
		t.Errorf("stampChangelog:\n%s\nwant:\n%s", got, want)
	}
}

func TestStampChangelogNextRelease(t *testing.T) {
	in := "## [Unreleased]\n\n### Fixed\n- b\n\n## [0.1.0] - 2026-12-07\n\n### Added\n- a\n\n" +
		"[Unreleased]: https://github.com/elector-dev/elector/compare/v0.1.0...HEAD\n" +
		"[0.1.0]: https://github.com/elector-dev/elector/releases/tag/v0.1.0\n"
	got, err := stampChangelog(in, "v0.1.1", "2026-12-08")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"## [Unreleased]\n\n## [0.1.1] - 2026-12-08\n\n### Fixed\n- b\n",
		"[Unreleased]: https://github.com/elector-dev/elector/compare/v0.1.1...HEAD\n[0.1.1]: https://github.com/elector-dev/elector/compare/v0.1.0...v0.1.1\n[0.1.0]: ",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("stampChangelog: no %q in\n%s", s, got)
		}
	}
	if _, err := stampChangelog(got, "v0.1.2", "2026-12-09"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty Unreleased section: err = %v, want one saying it is empty", err)
	}
	if _, err := stampChangelog(in, "v0.1.0", "2026-12-09"); err == nil {
		t.Error("a version released already: no error")
	}
}

func TestReleaseRequire(t *testing.T) {
	in := "module github.com/elector-dev/elector/ctrl\n\ngo 1.26.0\n\nreplace github.com/elector-dev/elector => ../\n\nrequire github.com/elector-dev/elector v0.0.0-00010101000000-000000000000\n"
	f, err := modfile.Parse("go.mod", []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := releaseRequire(f, "v0.1.0"); err != nil {
		t.Fatal(err)
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkReleased("ctrl/go.mod", "ctrl/v0.1.0", out, "v0.1.0"); err != nil {
		t.Errorf("the rewritten go.mod:\n%s\nfails the check: %v", out, err)
	}
	if err := checkReleased("ctrl/go.mod", "ctrl/v0.1.0", []byte(in), "v0.1.0"); err == nil || !strings.Contains(err.Error(), "replace") {
		t.Errorf("the development go.mod passes the check (err = %v); it must name the replace", err)
	}
	if got := relRoot("cmd/kubectl-elector"); got != "../.." {
		t.Errorf("relRoot(cmd/kubectl-elector) = %q, want ../..", got)
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"v0.1.0": true, "v1.2.3-rc.1": true, "": false, "0.1.0": false, "v0.1": false, "v0.1.0+meta": false} {
		if err := checkVersion(v); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

const krewTemplate = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: elector
spec:
  version: {{ .TagName }}
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    {{addURIAndSha "https://example.invalid/releases/download/{{ .TagName }}/kubectl-elector_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}
    bin: kubectl-elector
  - selector:
      matchLabels:
        os: darwin
        arch: arm64
    {{addURIAndSha "https://example.invalid/releases/download/{{ .TagName }}/kubectl-elector_{{ .TagName }}_darwin_arm64.tar.gz" .TagName }}
    bin: kubectl-elector
`

func TestRenderKrew(t *testing.T) {
	sums := map[string]string{
		"kubectl-elector_v0.1.0_linux_amd64.tar.gz":  "abc123",
		"kubectl-elector_v0.1.0_darwin_arm64.tar.gz": "def456",
	}
	got, err := renderKrew(krewTemplate, "v0.1.0", func(name string) (string, error) {
		if s, ok := sums[name]; ok {
			return s, nil
		}
		return "", errors.New("no archive " + name)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: elector
spec:
  version: v0.1.0
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    uri: https://example.invalid/releases/download/v0.1.0/kubectl-elector_v0.1.0_linux_amd64.tar.gz
    sha256: abc123
    bin: kubectl-elector
  - selector:
      matchLabels:
        os: darwin
        arch: arm64
    uri: https://example.invalid/releases/download/v0.1.0/kubectl-elector_v0.1.0_darwin_arm64.tar.gz
    sha256: def456
    bin: kubectl-elector
`
	if got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

// TestRunKrewEveryPlatform: krew refuses to write a manifest when an
// archive of the template is missing (no platform is left out quietly),
// and writes one that lists every platform with its archive's sha256.
func TestRunKrewEveryPlatform(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "elector.yaml")
	if err := os.WriteFile(tmpl, []byte(krewTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(dir, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "kubectl-elector_v0.1.0_linux_amd64.tar.gz"), []byte("linux"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.yaml")
	args := []string{"krew", "--template=" + tmpl, "--version=v0.1.0", "--dist=" + dist, "--out=" + out}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitFail || !strings.Contains(stderr.String(), "darwin_arm64") {
		t.Errorf("krew with the darwin/arm64 archive missing: exit %d, %q; want %d naming it", code, stderr.String(), exitFail)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("krew wrote %s with an archive missing (%v)", out, err)
	}
	if err := os.WriteFile(filepath.Join(dist, "kubectl-elector_v0.1.0_darwin_arm64.tar.gz"), []byte("darwin"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("krew: exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"linux_amd64": "linux", "darwin_arm64": "darwin"} {
		sum := sha256.Sum256([]byte(content))
		want := "kubectl-elector_v0.1.0_" + name + ".tar.gz\n    sha256: " + hex.EncodeToString(sum[:]) + "\n"
		if !strings.Contains(string(b), want) {
			t.Errorf("the manifest has no %q:\n%s", want, b)
		}
	}
	if !strings.Contains(stdout.String(), "2 platforms") {
		t.Errorf("krew printed %q, want it to count 2 platforms", stdout.String())
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"prep"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--version") {
		t.Errorf("prep without --version: exit %d, %q; want %d naming --version", code, stderr.String(), exitUsage)
	}
	stderr.Reset()
	if code := run([]string{"publish"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("an unknown command: exit %d, want %d", code, exitUsage)
	}
}
