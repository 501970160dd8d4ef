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

// The monitoring kit on real parts: a real Prometheus (built from
// github.com/prometheus/prometheus v0.316.0 by make prometheus) scrapes
// three sidecars and a sharded one on the real control plane, with
// deploy/monitoring/rules.yaml loaded as shipped (make test-e2e builds it
// first; make test-prometheus runs this test alone).

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

const prometheusVersion = "v0.316.0"

// prometheusBinary is $ELECTOR_PROMETHEUS, else the one make prometheus
// builds into the tool cache.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ELECTOR_PROMETHEUS")
	if bin == "" {
		dir := os.Getenv("ELECTOR_TOOLS_DIR")
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(cache, "elector", "tools")
		}
		bin = filepath.Join(dir, "prometheus-"+prometheusVersion)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Prometheus at %s: run make prometheus (or set ELECTOR_PROMETHEUS): %v", bin, err)
	}
	return bin
}

type promServer struct {
	base    string
	targets string // file_sd file
	client  *http.Client
}

// startPrometheus runs Prometheus with the shipped rules, scraping the
// targets written to its file_sd file every second.
func startPrometheus(t *testing.T) *promServer {
	t.Helper()
	repo, err := sidecar.RepoDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(targets, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: elector
    file_sd_configs:
      - files: [%s]
        refresh_interval: 1s
`, filepath.Join(repo, "deploy", "monitoring", "rules.yaml"), targets)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(prometheusBinary(t),
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	p := &promServer{base: "http://" + addr, targets: targets, client: &http.Client{Timeout: 5 * time.Second}}
	waitFor(t, 60*time.Second, "Prometheus to be ready", func() (bool, string) {
		resp, err := p.client.Get(p.base + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// setTargets writes the scrape targets.
func (p *promServer) setTargets(t *testing.T, addrs []string) {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{"targets": addrs}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := p.targets + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.targets); err != nil {
		t.Fatal(err)
	}
}

// query runs an instant query through the HTTP API and returns the
// number of series and their labels, for messages.
func (p *promServer) query(q string) (int, string, error) {
	resp, err := p.client.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, "", fmt.Errorf("unable to decode the answer to %s: %w", q, err)
	}
	if r.Status != "success" {
		return 0, "", fmt.Errorf("query %s: %s", q, r.Error)
	}
	var ls []string
	for _, s := range r.Data.Result {
		ls = append(ls, fmt.Sprint(s.Metric))
	}
	return len(r.Data.Result), strings.Join(ls, " "), nil
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// alerts returns the pending and firing alerts.
func (p *promServer) alerts() ([]promAlert, error) {
	resp, err := p.client.Get(p.base + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("unable to decode /api/v1/alerts: %w", err)
	}
	return r.Data.Alerts, nil
}

// firing reports whether alert name fires for lease.
func (p *promServer) firing(name, lease string) (bool, string) {
	as, err := p.alerts()
	if err != nil {
		return false, err.Error()
	}
	var states []string
	for _, a := range as {
		states = append(states, a.Labels["alertname"]+"="+a.State)
		if a.Labels["alertname"] == name && a.Labels["lease"] == lease && a.State == "firing" {
			return true, ""
		}
	}
	return false, "alerts: " + strings.Join(states, ", ")
}

// waitFor polls cond every 250ms until it holds, or fails after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", limit, what, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestMonitoringKit: with the shipped rules loaded, no alert fires during
// ten planned and ten SIGTERM handoffs; every dashboard panel's query
// returns data; ElectorNoLeader fires while every replica is stopped
// (SIGSTOP) past a lease and resolves after SIGCONT;
// ElectorPermissionDenied fires while the Role is deleted.
func TestMonitoringKit(t *testing.T) {
	// Serial: see main_test.go.
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	// The base Role, and what --shards needs for the sharded replica that
	// feeds the shard panel.
	rules := append(sidecar.Rules(m.Role), rbac.SharedLeaseRules()...)
	if err := n.SetRole(ctx(t), m.Role.Name, rules, nil); err != nil {
		t.Fatal(err)
	}
	args := sidecar.LocalArgs([]string{"--election=" + lease, "--http=0.0.0.0:4444"}, "--ttl="+restartTTL.String())
	f := newFleet(t, "monitored", n, args, nil, true, "replica-0", "replica-1", "replica-2")
	sharded := start(t, n, "sharded-0", sidecar.LocalArgs([]string{"--election=jobs", "--http=0.0.0.0:4444", "--shards=2"}, "--ttl="+restartTTL.String())...)

	p := startPrometheus(t)
	// Keep the targets current: a replica restarted after SIGTERM listens
	// on a new port.
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		var last []string
		for {
			var addrs []string
			for _, r := range append(f.replicas(), sharded) {
				c, cancel := context.WithTimeout(context.Background(), time.Second)
				if a, err := r.Addr(c); err == nil {
					addrs = append(addrs, a)
				}
				cancel()
			}
			if !slices.Equal(addrs, last) {
				p.setTargets(t, addrs)
				last = addrs
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	if _, err := waitAgreement(ctx(t), []*fleet{f}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "Prometheus to scrape the four sidecars", func() (bool, string) {
		k, ls, err := p.query(`elector_build_info`)
		if err != nil {
			return false, err.Error()
		}
		return k == 4, fmt.Sprintf("%d targets: %s", k, ls)
	})

	// Ten planned and ten SIGTERM handoffs; no alert may fire.
	var fired []string
	check := func() {
		as, err := p.alerts()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.State == "firing" {
				fired = append(fired, fmt.Sprint(a.Labels))
			}
		}
	}
	leases := n.Admin.CoordinationV1().Leases(n.Name)
	for i := range 20 {
		got, err := waitAgreement(ctx(t), []*fleet{f})
		if err != nil {
			t.Fatal(err)
		}
		old := got[0]
		if i%2 == 0 {
			if _, err := elector.RequestHandoff(ctx(t), leases, lease, ""); err != nil {
				t.Fatalf("handoff %d: %v", i, err)
			}
		} else {
			for _, r := range f.replicas() {
				if r.Name == old.leader {
					if err := r.Signal(syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("handoff %d: a new leader after %s", i, old.leader), func() (bool, string) {
			a := f.poll(ctx(t))
			return a.ok && a.token > old.token, strings.Join(a.views, "; ")
		})
		check()
	}
	// Let the last handoffs' samples be scraped and evaluated.
	for range 20 {
		check()
		time.Sleep(250 * time.Millisecond)
	}
	if len(fired) > 0 {
		t.Errorf("alerts fired during ten planned and ten SIGTERM handoffs: %v", fired)
	}

	// Every dashboard panel's queries return data.
	repo, err := sidecar.RepoDir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			q := strings.ReplaceAll(target.Expr, "$lease_namespace", ".*")
			waitFor(t, 30*time.Second, fmt.Sprintf("panel %q: %s to return data", panel.Title, q), func() (bool, string) {
				k, _, err := p.query(q)
				if err != nil {
					return false, err.Error()
				}
				return k > 0, "no series"
			})
		}
	}

	// Every replica stopped past a lease: no leader.
	rs := f.replicas()
	for _, r := range rs {
		if err := r.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	stopped := time.Now()
	waitFor(t, restartTTL+90*time.Second, "ElectorNoLeader to fire with every replica stopped", func() (bool, string) {
		return p.firing("ElectorNoLeader", lease)
	})
	t.Logf("ElectorNoLeader fired %s after SIGSTOP (lease %s, for 30s)", ms(time.Since(stopped)), restartTTL)
	for _, r := range rs {
		if err := r.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "ElectorNoLeader to resolve after SIGCONT", func() (bool, string) {
		on, why := p.firing("ElectorNoLeader", lease)
		return !on, why
	})

	// The Role deleted: permission denied.
	if err := deleteRole(n.Admin, n.Name, m.Role.Name); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor(t, 90*time.Second, "ElectorPermissionDenied to fire with the Role deleted", func() (bool, string) {
		return p.firing("ElectorPermissionDenied", lease)
	})
	t.Logf("ElectorPermissionDenied fired %s after the Role was deleted", ms(time.Since(deleted)))
}

func deleteRole(admin kubernetes.Interface, ns, name string) error {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.RbacV1().Roles(ns).Delete(c, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("unable to delete Role %s/%s: %w", ns, name, err)
	}
	return nil
}
