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
	got, err := renderKrew(krewTemplate, "v0.1.0", func(name string) (string, error) {
		if name == "kubectl-elector_v0.1.0_linux_amd64.tar.gz" {
			return "abc123", nil
		}
		return missingSha, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, kept := dropMissing(got)
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
`
	if got != want || kept != 1 {
		t.Errorf("rendered (%d platforms):\n%s\nwant (1):\n%s", kept, got, want)
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
