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

package legacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/legacy"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

const (
	// ttl is the stand-in's --ttl in these tests: lease 4s, renew deadline
	// 2s, retry 1s. 0.5's default is 10s; 4s keeps the takeovers short
	// and still leaves a renewal 2s to succeed on a busy machine.
	ttl = 4 * time.Second
	// guard is a failure deadline for waits, not a timing assertion: the
	// machine may be slow and shared.
	guard = 90 * time.Second
)

var (
	cp *controlplane.ControlPlane
	// bin is the stand-in, built once by TestMain.
	bin string
	// tmpDir holds the binary and the kubeconfigs.
	tmpDir string

	nsCounter  atomic.Int32
	settleOnce sync.Once
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	var err error
	tmpDir, err = os.MkdirTemp("", "elector-legacy-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	start := time.Now()
	bin, err = legacy.Build(ctx, tmpDir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	if d := time.Since(start); d > 30*time.Second {
		fmt.Fprintf(os.Stderr, "built the stand-in of leader-elector:0.5 in %s\n", d.Round(time.Second))
	}
	return controlplane.RunMainNoLeaks(m, &cp)
}

// admin returns an admin client that does not log the API server's
// deprecation warning for v1 Endpoints at every request.
func admin(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := cp.AdminConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ctx is the test's context with the failure deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

// nsName returns a new namespace name for the test.
func nsName(t *testing.T) string {
	ns := fmt.Sprintf("legacy-%d-%s", nsCounter.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	return ns
}

func settle(t *testing.T) {
	settleOnce.Do(func() {
		t.Logf("waited %s for the API server to settle", sidecar.Settle(t.Context(), admin(t), 30*time.Second).Round(time.Millisecond))
	})
}

// setup creates a namespace whose ServiceAccount holds legacy.Rules.
func setup(t *testing.T, election string) *sidecar.Namespace {
	t.Helper()
	settle(t)
	n, err := legacy.Setup(ctx(t), cp, nsName(t), election, tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts a stand-in replica with --id=id, killed when the test
// ends. Its output goes to the test log.
func start(t *testing.T, n *sidecar.Namespace, election, id, leadFile string) *legacy.Replica {
	t.Helper()
	r, err := legacy.Start(legacy.Options{
		Binary: bin, Kubeconfig: n.Kubeconfig,
		ID: id, Election: election, Namespace: n.Name, TTL: ttl,
		LeadFile: leadFile, Log: t.Output(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// startAll starts the replicas at once, so that they race to create the
// Endpoints object and to take the lock.
func startAll(t *testing.T, n *sidecar.Namespace, election, leadFile string, ids ...string) []*legacy.Replica {
	t.Helper()
	rs := make([]*legacy.Replica, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			rs[i], errs[i] = legacy.Start(legacy.Options{
				Binary: bin, Kubeconfig: n.Kubeconfig,
				ID: id, Election: election, Namespace: n.Name, TTL: ttl,
				LeadFile: leadFile, Log: t.Output(),
			})
		})
	}
	wg.Wait()
	for i, r := range rs {
		if r != nil {
			t.Cleanup(r.Kill)
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	return rs
}

// oneLeader waits until exactly one replica believes it leads, the record
// names it, and every replica answers GET / with its name; it returns the
// leader.
func oneLeader(t *testing.T, n *sidecar.Namespace, election string, rs ...*legacy.Replica) *legacy.Replica {
	t.Helper()
	c := ctx(t)
	kc := admin(t)
	var last string
	for {
		var leaders []*legacy.Replica
		for _, r := range rs {
			if r.Leading() {
				leaders = append(leaders, r)
			}
		}
		last = fmt.Sprintf("%d replicas lead", len(leaders))
		if len(leaders) == 1 {
			l := leaders[0]
			rec, err := legacy.ReadRecord(c, kc, n.Name, election)
			last = fmt.Sprintf("%s leads; record %+v (%v)", l.ID, rec, err)
			if err == nil && rec.HolderIdentity == l.ID {
				agreed := true
				for _, r := range rs {
					name, err := r.LeaderName(c)
					if err != nil || name != l.ID {
						last = fmt.Sprintf("%s leads; GET / on %s names %q (%v)", l.ID, r.ID, name, err)
						agreed = false
						break
					}
				}
				if agreed && l.Leading() {
					return l
				}
			}
		}
		select {
		case <-c.Done():
			t.Fatalf("no single agreed leader: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// noOverlaps fails the test if a replica reported an overlap.
func noOverlaps(t *testing.T, rs ...*legacy.Replica) {
	t.Helper()
	for _, r := range rs {
		for _, e := range r.Overlaps() {
			t.Errorf("%s reported an overlap: %s", r.ID, e.Line)
		}
	}
}

// nextRecord waits for the next record from WatchRecords that satisfies
// ok.
func nextRecord(t *testing.T, c context.Context, recs <-chan legacy.RecordChange, what string, ok func(legacy.RecordChange) bool) legacy.RecordChange {
	t.Helper()
	for {
		select {
		case r, open := <-recs:
			if !open {
				t.Fatalf("the watch of the record ended before %s", what)
			}
			if ok(r) {
				return r
			}
		case <-c.Done():
			t.Fatalf("no record %s: %v", what, c.Err())
		}
	}
}

// watchRecords watches the record until the test ends, and fails the
// test for a record that is not 0.5's.
func watchRecords(t *testing.T, n *sidecar.Namespace, election string) <-chan legacy.RecordChange {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	recs, errs, err := legacy.WatchRecords(c, admin(t), n.Name, election)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		for { // until the watch has stopped
			if _, ok := testwait.RecvOK(t, recs, "the watch of the records to stop"); !ok {
				break
			}
		}
		for {
			select {
			case err := <-errs:
				if !strings.Contains(err.Error(), "ended") {
					t.Errorf("watch: %v", err)
				}
			default:
				return
			}
		}
	})
	return recs
}

func leadFile(t *testing.T) string { return filepath.Join(t.TempDir(), "lead") }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// writeRecord writes rec on the Endpoints object as the admin, creating
// the object if needed, retrying on conflicts with the replicas' writes.
func writeRecord(t *testing.T, c context.Context, n *sidecar.Namespace, election string, rec legacy.Record) {
	t.Helper()
	val, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	eps := admin(t).CoreV1().Endpoints(n.Name)
	for {
		e, err := eps.Get(c, election, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			e = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: election, Annotations: map[string]string{legacy.AnnotationKey: string(val)}}}
			if _, err = eps.Create(c, e, metav1.CreateOptions{}); err == nil {
				return
			}
		} else if err == nil {
			if e.Annotations == nil {
				e.Annotations = map[string]string{}
			}
			e.Annotations[legacy.AnnotationKey] = string(val)
			if _, err = eps.Update(c, e, metav1.UpdateOptions{}); err == nil {
				return
			}
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("unable to write the record: %v", err)
		}
	}
}
