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
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// helpText is the output of `elector -h`.
func helpText(t *testing.T) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := runWith(context.Background(), []string{"-h"}, &stdout, &stderr, fakeEnv(nil)); code != ExitOK {
		t.Fatalf("-h: exit code %d, stderr %q", code, stderr.String())
	}
	return stdout.String()
}

// metricNames returns the names of the metric families in a Prometheus
// text exposition.
func metricNames(exposition string) []string {
	var names []string
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ := strings.Cut(rest, " ")
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// missingFromHelp returns, one line each, the served metrics that help
// does not list: a name of helpMetrics as a word, or go_* / process_*.
func missingFromHelp(help string, served []string) []string {
	var missing []string
	for _, name := range served {
		listed := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `\s`).MatchString(help)
		for _, prefix := range []string{"go_", "process_"} {
			if strings.HasPrefix(name, prefix) && strings.Contains(help, prefix+"*") {
				listed = true
			}
		}
		if !listed {
			missing = append(missing, name)
		}
	}
	return missing
}

// scrapeRunning runs elector with args while its API server is
// unreachable, and returns its /metrics: the collectors are registered
// before the first request (the elector's and the shards' when they are
// built, the HTTP server's when it starts), and a sidecar that waits for
// its API server keeps serving them.
func scrapeRunning(t *testing.T, args ...string) string {
	t.Helper()
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "http://" + down.Addr().String()
	down.Close() // nothing listens there now
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, append([]string{"--kubeconfig=" + writeKubeconfig(t, server, "opaque"), "--http=" + addr}, args...),
			&stdout, &stderr, fakeEnv(nil), quickStartup)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("elector did not exit 30s after its context ended; stderr:\n%s", stderr.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `msg="API server unreachable; waiting for it"`) {
		select {
		case code := <-done:
			t.Fatalf("exited with %d; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not started in 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// Every metric the binary serves is listed by `elector -h`, in both
// modes. The failure names each missing metric: add it to helpMetrics
// (help.go). e2e TestHelpListsEveryServedMetric checks the same on the
// real API server, with the vectors that appear only once used.
func TestHelpListsServedMetrics(t *testing.T) {
	help := helpText(t)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"one election", []string{"--election=my-app", "--election-namespace=team-a"}},
		{"--shards", []string{"--election=workers", "--election-namespace=team-a", "--shards=3"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			served := metricNames(scrapeRunning(t, mode.args...))
			if !slices.Contains(served, "elector_is_leader") || !slices.Contains(served, "go_goroutines") {
				t.Fatalf("the scrape lacks elector_is_leader or go_goroutines: %v", served)
			}
			for _, name := range missingFromHelp(help, served) {
				t.Errorf("metric %s is served on /metrics (%s) but `elector -h` does not list it; add it to helpMetrics in cmd/elector/help.go", name, mode.name)
			}
		})
	}
}

// -h says what the command gets in its environment, and what --shards
// does to the HTTP endpoints.
func TestHelpExecEnvironmentAndShards(t *testing.T) {
	help := helpText(t)
	for _, env := range []string{envToken, envIdentity, envLease, envShard} {
		if !regexp.MustCompile(`(?m)^\s+` + env + `\s`).MatchString(help) {
			t.Errorf("`elector -h` does not list the command's environment variable %s", env)
		}
	}
	if !strings.Contains(help, "/leader is not served") || !strings.Contains(help, "answer the shards document") {
		t.Errorf("`elector -h` does not say that with --shards / answers the shards document and /leader is not served:\n%s", help)
	}
}

// sidecarFlagRE finds --flag mentions in Markdown.
var sidecarFlagRE = regexp.MustCompile("--([a-z][a-z0-9-]*[a-z0-9])")

// otherProgramRE matches a command line of another program in the
// README's shell blocks (git, the release tool, the image tool and krew in
// "Install and versions"), or a cosign command quoted in its prose.
var otherProgramRE = regexp.MustCompile(`^(\$ )?(cd \S+ && )?(git|release|elector-image|(KREW_ROOT=\S+ )?krew) |` + "`" + `cosign `)

// sidecarFlagsInDocs returns, per file, the --flags that README.md and
// docs/*.md mention, except on lines about kubectl (the plugin and
// kubectl's own commands), command lines of other programs
// (otherProgramRE) and in docs/kubectl-elector.md, the plugin's page.
func sidecarFlagsInDocs(t *testing.T) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "..")
	files := []string{filepath.Join(root, "README.md")}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, docs...)
	out := map[string][]string{}
	for _, f := range files {
		if filepath.Base(f) == "kubectl-elector.md" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		continued := false // the line goes on a skipped command line
		for line := range strings.Lines(string(b)) {
			skip := continued || strings.Contains(line, "kubectl ") || otherProgramRE.MatchString(line)
			continued = skip && strings.HasSuffix(strings.TrimRight(line, " \n"), "\\")
			if skip {
				continue
			}
			for _, m := range sidecarFlagRE.FindAllStringSubmatch(line, -1) {
				out[filepath.Base(f)] = append(out[filepath.Base(f)], m[1])
			}
		}
	}
	return out
}

// Every --flag the README and docs/ mention for the sidecar exists.
func TestDocsFlagsExist(t *testing.T) {
	var f flags
	fs := newFlagSet(&f)
	exists := func(name string) bool { return fs.Lookup(name) != nil }
	// Flags of other programs, on lines that do not say kubectl.
	allowed := map[string]string{
		"for":           "kubectl elector why (README.md)",
		"as":            "kubectl's, which the plugin takes (README.md)",
		"context":       "kubectl's, which the plugin takes (README.md)",
		"only":          "the controller-runtime benchmark's (docs/controller-runtime.md)",
		"plain":         "the controller-runtime benchmark's (docs/controller-runtime.md)",
		"feature-gates": "kube-apiserver's, for sharded watches (docs/sharded-controllers.md)",
	}
	seen := 0
	for file, names := range sidecarFlagsInDocs(t) {
		for _, name := range names {
			seen++
			if !exists(name) && allowed[name] == "" {
				t.Errorf("%s mentions --%s for the sidecar, but elector has no such flag (elector -h); fix the doc, or the flag", file, name)
			}
		}
	}
	if seen < 30 {
		t.Fatalf("found only %d flag mentions in README.md and docs/: the scan is broken", seen)
	}
}
