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

package controlplane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector/test/controlplane"
)

// haWait bounds each wait of TestHA for the control plane to heal. It is a
// deadline against a wedged test, not an expectation: the times are logged.
const haWait = 30 * time.Second

// TestHA starts a control plane of three kube-apiservers behind the load
// balancer on a three-member etcd cluster, and checks that it serves through
// the load balancer while any one member is stopped.
func TestHA(t *testing.T) {
	ctx := t.Context()
	begin := time.Now()
	c, err := controlplane.Start(ctx, controlplane.Options{HA: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("HA control plane ready in %s", time.Since(begin).Round(time.Millisecond))

	if c.Members() != 3 || c.EtcdMembers() != 3 {
		t.Fatalf("Members() = %d, EtcdMembers() = %d; want 3 and 3", c.Members(), c.EtcdMembers())
	}
	if got := c.InRotation(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("InRotation() = %v after Start, want [0 1 2]", got)
	}
	for i := range c.Members() {
		if c.MemberURL(i) == c.URL() {
			t.Errorf("URL() = MemberURL(%d) = %s, want the load balancer", i, c.URL())
		}
	}

	// Static tokens, ServiceAccount tokens and the CA work on every member.
	admin := newClient(t, c.AdminConfig())
	saConfig, err := c.ServiceAccountConfig(ctx, "ha", "candidate")
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Members() {
		for cfg, want := range map[*rest.Config]string{
			c.AdminConfig(): controlplane.AdminUser,
			saConfig:        "system:serviceaccount:ha:candidate",
		} {
			member := rest.CopyConfig(cfg)
			member.Host = c.MemberURL(i)
			if got := whoami(t, newClient(t, member)); got.Username != want {
				t.Errorf("member %d authenticates %s as %s", i, want, got.Username)
			}
		}
	}

	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "ha", Namespace: "ha"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("candidate")},
	}
	if _, err := admin.CoordinationV1().Leases("ha").Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatalf("unable to create a Lease through the load balancer: %v", err)
	}
	fresh := freshClient(t, c)
	// The writer's client is not rate-limited, so that the gaps between its
	// writes are the control plane's.
	unlimited := c.AdminConfig()
	unlimited.QPS = -1
	writes := newClient(t, unlimited)

	// Any kube-apiserver may go: the load balancer routes around it.
	for i := range c.Members() {
		w := startWriter(ctx, writes)
		out := pollSince(ctx, func() bool { return !slices.Contains(c.InRotation(), i) })
		stopping := time.Now()
		c.StopAPIServerMember(i)
		stopped := time.Now()
		if got, _ := c.MemberPIDs(); got[i] != 0 {
			t.Fatalf("kube-apiserver member %d still running as %d after StopAPIServerMember", i, got[i])
		}
		outOfRotation := out.wait(t, fmt.Sprintf("kube-apiserver member %d out of rotation", i))
		heal(t, fmt.Sprintf("Lease writes with kube-apiserver member %d stopped", i), w.succeededSince(stopped))
		// Every new connection reaches a live member.
		for range 3 {
			if err := fresh.round(ctx); err != nil {
				t.Fatalf("kube-apiserver member %d stopped: %v", i, err)
			}
		}
		begin := time.Now()
		if err := c.StartAPIServerMember(ctx, i); err != nil {
			t.Fatal(err)
		}
		restart := time.Since(begin)
		if got := c.InRotation(); !slices.Contains(got, i) {
			t.Errorf("InRotation() = %v after StartAPIServerMember(%d)", got, i)
		}
		heal(t, fmt.Sprintf("Lease writes with kube-apiserver member %d back", i), w.succeededSince(time.Now()))
		gap, failed, writes := w.stop()
		t.Logf("kube-apiserver member %d: stopped in %s, out of rotation %s after the stop began; back in rotation %s after StartAPIServerMember; longest gap between Lease writes %s (%d of %d failed)",
			i, stopped.Sub(stopping).Round(time.Millisecond), outOfRotation.Round(time.Millisecond), restart.Round(time.Millisecond), gap.Round(time.Millisecond), failed, writes)

		member := rest.CopyConfig(saConfig)
		member.Host = c.MemberURL(i)
		if got := whoami(t, newClient(t, member)); got.Username != "system:serviceaccount:ha:candidate" {
			t.Errorf("restarted member %d authenticates the ServiceAccount as %s", i, got.Username)
		}
	}

	// Any etcd member may go: writes go on with two of three.
	for i := range c.EtcdMembers() {
		w := startWriter(ctx, writes)
		stopping := time.Now()
		c.StopEtcdMember(i)
		stopped := time.Now()
		if _, got := c.MemberPIDs(); got[i] != 0 {
			t.Fatalf("etcd member %d still running as %d after StopEtcdMember", i, got[i])
		}
		heal(t, fmt.Sprintf("Lease writes with etcd member %d stopped", i), w.succeededSince(stopped))
		if err := fresh.round(ctx); err != nil {
			t.Fatalf("etcd member %d stopped: %v", i, err)
		}
		begin := time.Now()
		if err := c.StartEtcdMember(ctx, i); err != nil {
			t.Fatal(err)
		}
		restart := time.Since(begin)
		heal(t, fmt.Sprintf("Lease writes with etcd member %d back", i), w.succeededSince(time.Now()))
		gap, failed, writes := w.stop()
		t.Logf("etcd member %d: stopped in %s; healthy %s after StartEtcdMember; longest gap between Lease writes %s (%d of %d failed)",
			i, stopped.Sub(stopping).Round(time.Millisecond), restart.Round(time.Millisecond), gap.Round(time.Millisecond), failed, writes)
	}

	// Stop leaves no process and no directory behind.
	apiservers, etcd := c.MemberPIDs()
	dir := filepath.Dir(c.Kubeconfig())
	begin = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("HA control plane stopped in %s", time.Since(begin).Round(time.Millisecond))
	for _, pid := range append(apiservers, etcd...) {
		if pid == 0 {
			t.Errorf("MemberPIDs() before Stop = %v, %v; want every member running", apiservers, etcd)
			continue
		}
		// Each child leads its own process group.
		for _, target := range []int{pid, -pid} {
			if err := syscall.Kill(target, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", target, err)
			}
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s after Stop: %v, want not exist", dir, err)
	}
	if a, e := c.MemberPIDs(); slices.ContainsFunc(append(a, e...), func(pid int) bool { return pid != 0 }) {
		t.Errorf("MemberPIDs() after Stop = %v, %v; want zeros", a, e)
	}
}

// heal retries check until it succeeds, failing the test after haWait.
func heal(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(haWait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not healed after %s: %v", what, haWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writer renews the Lease ha/ha through the load balancer, one write after
// the other, and records the longest time between two successful writes.
type writer struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	last     time.Time // of the last successful write
	longest  time.Duration
	lastErr  error
	writes   int
	failures int
}

func startWriter(ctx context.Context, client *kubernetes.Clientset) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{cancel: cancel, done: make(chan struct{}), last: time.Now()}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			err := renew(ctx, client)
			now := time.Now()
			w.mu.Lock()
			if ctx.Err() == nil {
				w.writes++
				if err == nil {
					w.longest = max(w.longest, now.Sub(w.last))
					w.last = now
				} else {
					w.failures++
					w.lastErr = err
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

// succeededSince returns a check, for heal, that a write succeeded after t.
func (w *writer) succeededSince(t time.Time) func() error {
	return func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.last.After(t) {
			return nil
		}
		if w.lastErr != nil {
			return fmt.Errorf("no successful Lease write since; last error: %w", w.lastErr)
		}
		return errors.New("no successful Lease write since")
	}
}

// stop stops the writer and returns the longest time between two
// successful writes, the failed writes and all the writes.
func (w *writer) stop() (longest time.Duration, failed, writes int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.longest, w.failures, w.writes
}

// poller polls a condition from its start and records when it first holds.
type poller struct {
	start time.Time
	done  chan struct{}
	held  time.Duration // written before done is closed
}

func pollSince(ctx context.Context, cond func() bool) *poller {
	p := &poller{start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for !cond() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		p.held = time.Since(p.start)
	}()
	return p
}

// wait waits until the condition holds and returns how long after the start
// it first did, failing the test after haWait.
func (p *poller) wait(t *testing.T, what string) time.Duration {
	t.Helper()
	select {
	case <-p.done:
		if p.held == 0 {
			t.Fatalf("%s: test context done", what)
		}
		return p.held
	case <-time.After(haWait):
		t.Fatalf("%s: not after %s", what, haWait)
		return 0
	}
}

// renew updates the renew time of the Lease ha/ha through the load balancer.
func renew(ctx context.Context, client *kubernetes.Clientset) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	leases := client.CoordinationV1().Leases("ha")
	lease, err := leases.Get(ctx, "ha", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Lease: %w", err)
	}
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Lease: %w", err)
	}
	return nil
}

// freshLeaseClient reads the Lease through the load balancer on new
// connections, which the load balancer spreads over the members, where a
// client-go client keeps one connection to one member.
type freshLeaseClient struct {
	http  *http.Client
	url   string
	token string
	n     int
}

func freshClient(t *testing.T, c *controlplane.ControlPlane) *freshLeaseClient {
	t.Helper()
	cfg := c.AdminConfig()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.CAData) {
		t.Fatal("unable to parse the CA data")
	}
	return &freshLeaseClient{
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		}},
		url:   c.URL() + "/apis/coordination.k8s.io/v1/namespaces/ha/leases/ha",
		token: cfg.BearerToken,
		n:     c.Members(),
	}
}

// round reads the Lease once per member, each time on a new connection.
func (f *freshLeaseClient) round(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for range f.n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := f.http.Do(req)
		if err != nil {
			return fmt.Errorf("new connection: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("new connection: GET Lease: %s", resp.Status)
		}
	}
	return nil
}
