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

package kubectlelector

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

// handedRE is handoff's line on success.
var handedRE = regexp.MustCompile(`^(\S+) leads (\S+) now, token (\d+) \(was (\S+), token (\d+)\); the handoff took (\S+)\.\n$`)

// leaders waits until the Lease has a holder among rs and every replica
// answers GET / with it.
func leaders(t *testing.T, n *sidecar.Namespace, lease string, rs ...*sidecar.Replica) string {
	t.Helper()
	c := ctx(t)
	for {
		h := "" // also while the first replica has not created the Lease yet
		if l, err := n.Admin.CoordinationV1().Leases(n.Name).Get(c, lease, metav1.GetOptions{}); err == nil {
			h = holder(l)
		}
		agreed := h != ""
		for _, r := range rs {
			if name, err := r.LeaderName(c); err != nil || name != h {
				agreed = false
			}
		}
		if agreed {
			return h
		}
		select {
		case <-c.Done():
			t.Fatalf("the replicas do not agree on a leader (the Lease names %q)", h)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestHandoffAmongSidecars: with --to and without, among three elector
// sidecars; every handoff moves the Lease to another replica with a
// higher token, and the Events tell the story to status.
func TestHandoffAmongSidecars(t *testing.T) {
	n, lease := setup(t)
	rs := []*sidecar.Replica{start(t, n, lease, "replica-a"), start(t, n, lease, "replica-b"), start(t, n, lease, "replica-c")}
	readyPods(t, n, "replica-a", "replica-b", "replica-c")
	op := serviceAccount(t, n, "operator", operatorRules(lease))
	first := leaders(t, n, lease, rs...)
	waitList(t, op, func(m map[string]leaseItem) bool { return m[lease].CanHandOff })

	// Watch the whole time, as an operator would.
	lines := watchLines(t, op, lease)
	lines.waitFor(t, regexp.MustCompile(first+` holds it \(token \d+, elector\), lease 10s$`))

	target := "replica-a"
	if first == target {
		target = "replica-b"
	}
	prevToken := token(leaseOf(t, n, lease))
	// A typo is refused before anything is written.
	if r := plugin(t, op, "handoff", lease, "--to", target+"x"); r.code != 7 || r.stdout != "" ||
		!strings.Contains(r.stderr, `refusing to hand `+n.Name+`/`+lease+` to "`+target+`x": there is no Pod "`+target+`x" in namespace `+n.Name) {
		t.Fatalf("handoff --to a typo: %s", r)
	}
	if _, ok := leaseOf(t, n, lease).Annotations["elector.dev/handoff-to"]; ok {
		t.Fatal("the refused handoff wrote a request on the Lease")
	}
	r := plugin(t, op, "handoff", lease, "--to", target)
	m := handedRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != target || m[4] != first || m[5] != strconv.Itoa(int(prevToken)) {
		t.Fatalf("handoff --to %s: %s", target, r)
	}
	if tok, _ := strconv.Atoi(m[3]); int32(tok) <= prevToken {
		t.Errorf("handoff --to: new token %d, not above %d", tok, prevToken)
	}
	if got := leaders(t, n, lease, rs...); got != target {
		t.Errorf("after handoff --to %s the replicas agree on %s", target, got)
	}

	prevToken = token(leaseOf(t, n, lease))
	r = plugin(t, op, "handoff", lease)
	m = handedRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] == target || m[4] != target {
		t.Fatalf("handoff to anyone: %s", r)
	}
	if tok, _ := strconv.Atoi(m[3]); int32(tok) <= prevToken {
		t.Errorf("handoff to anyone: new token %d, not above %d", tok, prevToken)
	}
	third := leaders(t, n, lease, rs...)
	if third != m[1] {
		t.Errorf("the replicas agree on %s, handoff said %s", third, m[1])
	}

	// --to the leader itself is a no-op.
	if r := plugin(t, op, "handoff", lease, "--to", third); r.code != 0 || !strings.Contains(r.stdout, third+" already leads") {
		t.Errorf("handoff --to the leader: %s", r)
	}

	lines.waitFor(t, regexp.MustCompile(first+` handed off to `+target+` \(token \d+\)$`))
	lines.waitFor(t, regexp.MustCompile(target+` took up the Lease \S+ after `+first+` handed it over`))
	lines.waitFor(t, regexp.MustCompile(target+` released it \(token \d+\)$`))
	lines.waitFor(t, regexp.MustCompile(third+` took over after the release \(token \d+\); gap \S+ since the last write$`))

	// The Events, as status draws them.
	waitStatus(t, op, lease, func(r result) bool {
		return regexp.MustCompile(`(?m)`+first+`\s+handed off to `+target+`, token \d+$`).MatchString(r.stdout) &&
			strings.Contains(r.stdout, "released the Lease to anyone else") &&
			regexp.MustCompile(`(?m)^  `+third+`\s+\|.*\|\s+token \d+\s+.*leads now$`).MatchString(r.stdout)
	})
}

// TestHandoffToDeadTarget: a target that no Ready Pod shows running is
// refused; with --force, the leader stops and hands the Lease to it; the
// plugin says so on its timeout, and a live replica takes the Lease after
// the lease duration.
func TestHandoffToDeadTarget(t *testing.T) {
	n, lease := setup(t)
	rs := []*sidecar.Replica{start(t, n, lease, "replica-a"), start(t, n, lease, "replica-b")}
	readyPods(t, n, "replica-a", "replica-b")
	op := serviceAccount(t, n, "operator", operatorRules(lease))
	leaders(t, n, lease, rs...)
	waitList(t, op, func(m map[string]leaseItem) bool { return m[lease].CanHandOff })

	if r := plugin(t, op, "handoff", lease, "--to", "replica-gone", "--timeout", "3s"); r.code != 7 ||
		!strings.Contains(r.stderr, `there is no Pod "replica-gone" in namespace `+n.Name) || !strings.Contains(r.stderr, "or pass --force") {
		t.Fatalf("handoff to a target without a Pod: %s", r)
	}
	r := plugin(t, op, "handoff", lease, "--to", "replica-gone", "--timeout", "3s", "--force")
	if r.code != 8 || !strings.Contains(r.stderr, "to replica-gone after ") ||
		!strings.Contains(r.stderr, "but replica-gone did not take it up within 3s: it may not be running. Any candidate may take the Lease after its lease duration (10s)") {
		t.Fatalf("handoff to a dead target: %s", r)
	}
	// After the lease duration a live replica takes the Lease.
	c := ctx(t)
	for holder(leaseOf(t, n, lease)) == "replica-gone" {
		select {
		case <-c.Done():
			t.Fatal("nobody took the Lease from the dead target")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if got := leaders(t, n, lease, rs...); got != "replica-a" && got != "replica-b" {
		t.Errorf("after the dead target's lease duration the replicas agree on %q", got)
	}
}

// lineStream collects the lines of a running `kubectl elector watch`.
type lineStream struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

// watchLines starts `kubectl elector watch lease` as op until the test
// ends.
func watchLines(t *testing.T, op *sidecar.Namespace, lease string) *lineStream {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	args := []string{"--kubeconfig=" + op.Kubeconfig, "-n", op.Name, "watch"}
	if lease != "" {
		args = append(args, lease) // else every Lease of the namespace
	}
	cmd := exec.CommandContext(c, pluginBin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &lineStream{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.read(out)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cmd.Wait() // ctx.Err() after a cancel, whatever the exit code
		t.Logf("$ kubectl elector watch %s\n%s%s", lease, strings.Join(s.all(), "\n")+"\n", stderr.String())
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("watch exited with %d after ^C, want 0", code)
		}
	})
	return s
}

func (s *lineStream) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s.mu.Lock()
		s.lines = append(s.lines, sc.Text())
		s.mu.Unlock()
		select {
		case s.more <- struct{}{}:
		default:
		}
	}
}

func (s *lineStream) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// waitFor waits for a line matching re.
func (s *lineStream) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	c := ctx(t)
	for {
		for _, l := range s.all() {
			if re.MatchString(l) {
				return l
			}
		}
		select {
		case <-c.Done():
			t.Fatalf("watch printed no line matching %s:\n%s", re, strings.Join(s.all(), "\n"))
		case <-s.more:
		case <-time.After(time.Second):
		}
	}
}

// TestHandoffWithoutOtherCandidate: a handoff to anyone else is refused
// while the leader's workload has no other Ready Pod, and goes through
// once one is Ready.
func TestHandoffWithoutOtherCandidate(t *testing.T) {
	n, lease := setup(t)
	a := start(t, n, lease, "replica-a")
	readyPods(t, n, "replica-a")
	op := serviceAccount(t, n, "operator", operatorRules(lease))
	leaders(t, n, lease, a)
	waitList(t, op, func(m map[string]leaseItem) bool { return m[lease].CanHandOff })

	r := plugin(t, op, "handoff", lease)
	if r.code != 7 || r.stdout != "" || !strings.Contains(r.stderr, "refusing to hand "+n.Name+"/"+lease+
		" to anyone else: Deployment/replicas has no other Ready Pod, so no other candidate would take the Lease") {
		t.Fatalf("handoff with no other candidate: %s", r)
	}
	if _, ok := leaseOf(t, n, lease).Annotations["elector.dev/handoff-to"]; ok {
		t.Fatal("the refused handoff wrote a request on the Lease")
	}

	b := start(t, n, lease, "replica-b")
	readyPods(t, n, "replica-b")
	leaders(t, n, lease, a, b)
	r = plugin(t, op, "handoff", lease)
	if m := handedRE.FindStringSubmatch(r.stdout); r.code != 0 || m == nil || m[1] != "replica-b" ||
		!strings.Contains(r.stderr, "Other candidates (Ready Pods of Deployment/replicas): replica-b.") {
		t.Fatalf("handoff with another candidate: %s", r)
	}
}
