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
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

const (
	// ttl is the sidecar's default. Only the SIGKILL takeover waits for it;
	// graceful handoffs take milliseconds whatever the ttl. A shorter one
	// makes the suite flaky on a busy machine: the sidecar renews once per
	// ttl/5 and steps down at ttl/4 after its last renewal, so a single
	// renewal slower than ttl/20 (150ms at 3s, 500ms at 10s) ends a
	// tenure, and in exec mode the process.
	ttl = 10 * time.Second
	// guard is a failure deadline for waits, not a timing assertion: the
	// machine may be slow and shared.
	guard = 60 * time.Second
)

var (
	// nsCounter makes namespace names unique: tests that run in parallel
	// each have their own namespace.
	nsCounter  atomic.Int32
	settleOnce sync.Once
	// nsInvalid matches what a namespace name (an RFC 1123 label) may not
	// hold, such as the "/" and "_" of a subtest's name.
	nsInvalid = regexp.MustCompile(`[^a-z0-9-]+`)
)

func admin(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// render renders deploy/<rel> as `kubectl kustomize` would.
func render(t *testing.T, rel string) *sidecar.Manifests {
	t.Helper()
	dir, err := sidecar.DeployDir()
	if err != nil {
		t.Fatal(err)
	}
	m, err := sidecar.Render(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func election(t *testing.T, m *sidecar.Manifests) string {
	t.Helper()
	name, err := m.Election()
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// setup applies the manifests' RBAC (and Service) in a new namespace.
func setup(t *testing.T, m *sidecar.Manifests) *sidecar.Namespace {
	t.Helper()
	ns := fmt.Sprintf("e2e-%d-%s", nsCounter.Add(1), nsInvalid.ReplaceAllString(strings.ToLower(t.Name()), "-"))
	if len(ns) > 63 {
		ns = ns[:63]
	}
	ns = strings.TrimRight(ns, "-")
	settleOnce.Do(func() {
		t.Logf("waited %s for the API server to settle", ms(sidecar.Settle(t.Context(), admin(t), 30*time.Second)))
	})
	n, err := sidecar.Apply(ctx(t), cp, ns, m, tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ctx is the test's context with the failure deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

// start starts a replica as Pod pod of namespace n, killed (with its
// process group) when the test ends. Its output goes to the test log.
func start(t *testing.T, n *sidecar.Namespace, pod string, args ...string) *sidecar.Replica {
	t.Helper()
	r, err := sidecar.Start(sidecar.Options{
		Binary: electorBin, Kubeconfig: n.Kubeconfig,
		PodName: pod, PodNamespace: n.Name,
		Args: args, Log: t.Output(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Kill()
		if strings.Contains(r.Output(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race in elector; see its output above", pod)
		}
	})
	return r
}

// watch subscribes to a replica's /watch until the test ends.
func watch(t *testing.T, r *sidecar.Replica) <-chan sidecar.Leader {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := r.Watch(c)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// firstToLead waits for one of the replicas to lead.
func firstToLead(t *testing.T, streams map[*sidecar.Replica]<-chan sidecar.Leader) (*sidecar.Replica, sidecar.Leader) {
	t.Helper()
	r, l, err := sidecar.FirstToLead(ctx(t), streams)
	if err != nil {
		t.Fatal(err)
	}
	return r, l
}

// agree waits until every replica answers GET / with {"name":"<leader>"}.
func agree(t *testing.T, leader string, rs ...*sidecar.Replica) {
	t.Helper()
	c := ctx(t)
	for _, r := range rs {
		for {
			name, err := r.LeaderName(c)
			if err == nil && name == leader {
				break
			}
			if c.Err() != nil {
				t.Fatalf("%s: GET / names %q (%v), want %q", r.Name, name, err, leader)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// exitCode waits for the replica to exit.
func exitCode(t *testing.T, r *sidecar.Replica) int {
	t.Helper()
	code, err := r.Wait(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Output())
	}
	return code
}

// metric returns the value of an elector metric for the Lease from /metrics.
func metric(t *testing.T, r *sidecar.Replica, name, lease string) string {
	t.Helper()
	resp, err := r.Get(ctx(t), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{[^}]*lease="` + regexp.QuoteMeta(lease) + `"[^}]*\} (\S+)$`)
	m := re.FindSubmatch(resp.Body)
	if m == nil {
		t.Fatalf("%s: /metrics has no %s for lease %s:\n%s", r.Name, name, lease, resp.Body)
	}
	return string(m[1])
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
