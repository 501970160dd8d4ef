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

package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoFile reads a file at the repository root, two levels up.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDockerfileAgrees checks that the Dockerfile describes the image
// make image builds: empty base, entrypoint, user, labels, ldflags and
// platforms.
func TestDockerfileAgrees(t *testing.T) {
	if problems := checkDockerfile(repoFile(t, "Dockerfile")); len(problems) > 0 {
		t.Errorf("the Dockerfile disagrees with tools/image:\n%s", strings.Join(problems, "\n"))
	}
}

// TestDockerfileCheckFails shows that the check catches each kind of drift.
func TestDockerfileCheckFails(t *testing.T) {
	good := repoFile(t, "Dockerfile")
	for _, tc := range []struct{ name, old, new string }{
		{"base", "FROM scratch", "FROM gcr.io/distroless/static-debian12:nonroot"},
		{"entrypoint", `ENTRYPOINT ["/elector"]`, `ENTRYPOINT ["/usr/local/bin/elector"]`},
		{"copy", "/out/elector /elector", "/out/elector /bin/elector"},
		{"user", "USER 65532:65532", "USER 65532"},
		{"label value", `licenses="Apache-2.0"`, `licenses="MIT"`},
		{"label missing", `org.opencontainers.image.title="elector" \`, `\`},
		{"label arg", `version="${VERSION}"`, `version="v1"`},
		{"platforms", "linux/ppc64le,", ""},
		{"ldflags", "-s -w -X main.buildVersion", "-X main.buildVersion"},
		{"cgo", "CGO_ENABLED=0 GOOS", "GOOS"},
		{"tags", "-tags=nethttpomithttp2 ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the Dockerfile has no %q to change", tc.old)
			}
			bad := strings.Replace(good, tc.old, tc.new, 1)
			if problems := checkDockerfile(bad); len(problems) == 0 {
				t.Errorf("with %q instead of %q the check finds nothing", tc.new, tc.old)
			}
		})
	}
}

// TestMakefileLDFlags checks that make build stamps the binary as the
// image does, and builds it with the same tags.
func TestMakefileLDFlags(t *testing.T) {
	m := regexp.MustCompile(`(?m)^LDFLAGS :=\s*(.*)$`).FindStringSubmatch(repoFile(t, "Makefile"))
	if m == nil {
		t.Fatal("the Makefile has no LDFLAGS := line")
	}
	if want := LDFlags("$(VERSION)", "$(COMMIT)"); m[1] != want {
		t.Errorf("Makefile LDFLAGS = %q, want %q (tools/image LDFlags)", m[1], want)
	}
	m = regexp.MustCompile(`(?m)^TAGS :=\s*(.*)$`).FindStringSubmatch(repoFile(t, "Makefile"))
	if len(m) < 2 || m[1] != Tags {
		t.Errorf("Makefile TAGS = %q, want %q (tools/image Tags)", m, Tags)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile returns the instructions and the comment lines.
func parseDockerfile(text string) (instrs []instruction, comments []string) {
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			comments = append(comments, trimmed)
			continue
		}
		if trimmed == "" && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		instrs = append(instrs, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	return instrs, comments
}

// words splits s at spaces outside double quotes, unquoting.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, started = !inQuote, true
		case r == ' ' && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

// checkDockerfile returns one line per disagreement with this package.
func checkDockerfile(text string) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	instrs, comments := parseDockerfile(text)

	// The final stage: from the last FROM on.
	last := -1
	for i, in := range instrs {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return []string{"no FROM"}
	}
	if f := strings.Fields(instrs[last].args); len(f) == 0 || f[0] != Base {
		add("final stage FROM %s, want FROM %s", instrs[last].args, Base)
	}
	args := map[string]bool{}
	labels := map[string]string{}
	var user, copyDest, entrypoint string
	for _, in := range instrs[last+1:] {
		switch in.cmd {
		case "ARG":
			for _, w := range words(in.args) {
				k, _, _ := strings.Cut(w, "=")
				args[k] = true
			}
		case "USER":
			user = in.args
		case "COPY":
			w := strings.Fields(in.args)
			copyDest = w[len(w)-1]
			if !slices.Contains(w, "/out/elector") {
				add("COPY %s: want the binary built as /out/elector", in.args)
			}
		case "ENTRYPOINT":
			entrypoint = in.args
		case "LABEL":
			for _, w := range words(in.args) {
				k, v, _ := strings.Cut(w, "=")
				labels[k] = v
			}
		}
	}
	if user != User {
		add("USER %q, want %q", user, User)
	}
	if copyDest != Entrypoint {
		add("COPY puts the binary at %q, want %q", copyDest, Entrypoint)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{Entrypoint}) {
		add("ENTRYPOINT %s, want [%q] in exec form", entrypoint, Entrypoint)
	}
	// The labels: the constants, and the build args for the rest.
	want := Labels("${VERSION}", "${COMMIT}", unixEpoch)
	want[LabelCreated] = "${CREATED}"
	for _, k := range LabelKeys {
		got, ok := labels[k]
		switch {
		case !ok:
			add("no LABEL %s", k)
		case got != want[k]:
			add("LABEL %s=%q, want %q", k, got, want[k])
		}
		if arg, ok := strings.CutPrefix(want[k], "${"); ok && !args[strings.TrimSuffix(arg, "}")] {
			add("LABEL %s uses %s, which the final stage does not declare with ARG", k, want[k])
		}
	}
	for k := range labels {
		if !slices.Contains(LabelKeys, k) {
			add("LABEL %s is not one of tools/image's LabelKeys", k)
		}
	}
	// The build: static, trimmed, stamped as LDFlags.
	var build string
	for _, in := range instrs {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, w := range []string{
		"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-tags=" + Tags, Package,
		`-ldflags="` + LDFlags("${VERSION}", "${COMMIT}") + `"`,
	} {
		if !strings.Contains(build, w) {
			add("the go build RUN lacks %s: %s", w, build)
		}
	}
	// The platforms, from the buildx command in the comments.
	var platforms []string
	for _, c := range comments {
		if m := regexp.MustCompile(`buildx build .*--platform=(\S+)`).FindStringSubmatch(c); m != nil {
			platforms = strings.Split(m[1], ",")
		}
	}
	var wantPlatforms []string
	for _, p := range Platforms {
		wantPlatforms = append(wantPlatforms, platformString(p))
	}
	if !slices.Equal(platforms, wantPlatforms) {
		add("the buildx comment builds --platform=%s, want %s", strings.Join(platforms, ","), strings.Join(wantPlatforms, ","))
	}
	return problems
}
