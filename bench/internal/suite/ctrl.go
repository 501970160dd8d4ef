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

package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/bench/internal/stats"
)

// ctrlResult is one variant of the controller-runtime handoff scenario.
type ctrlResult struct {
	label   string // "elector ctrl.NewManager", "controller-runtime ctrl.NewManager"
	samples []time.Duration
	err     error
}

func (c ctrlResult) summary() stats.Summary { return stats.Summarize(c.samples) }

// ctrlStopTimeout bounds a replica's exit after SIGTERM.
const ctrlStopTimeout = 30 * time.Second

// ctrlReadyTimeout bounds a replica's start (caches synced, probes up).
const ctrlReadyTimeout = 60 * time.Second

// runCtrl: two replicas of the example operator of ctrl/example — a
// controller-runtime manager with a reconciler that works continuously
// (every 50 ms) — SIGTERM to the leader at t0; measured until the other
// replica's first reconcile starts. Once with elector's ctrl.NewManager,
// once with controller-runtime's own, both at controller-runtime's default
// timings (15s / 10s / 2s) and LeaderElectionReleaseOnCancel.
func runCtrl(ctx context.Context, e *env, res *results) error {
	bin := filepath.Join(e.dir, "example")
	root, err := moduleDir(ctx, "github.com/elector-dev/elector")
	if err != nil {
		return err
	}
	if err := goCmd(ctx, filepath.Join(root, "ctrl"), append(slices.Clone(buildFlags), "-o", bin, "./example")...); err != nil {
		return err
	}
	for _, v := range []struct {
		label string
		plain bool
	}{{"elector ctrl.NewManager", false}, {"controller-runtime ctrl.NewManager", true}} {
		samples, err := ctrlTrials(ctx, e, bin, v.plain)
		res.ctrl = append(res.ctrl, ctrlResult{label: v.label, samples: samples, err: err})
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// ctrlTrials runs the trials of one variant and returns the samples.
func ctrlTrials(ctx context.Context, e *env, bin string, plain bool) ([]time.Duration, error) {
	ns, err := e.namespace(ctx, "ctrl")
	if err != nil {
		return nil, err
	}
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "work"}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("unable to create the ConfigMap: %w", err)
	}
	dir := filepath.Join(e.dir, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	record := filepath.Join(dir, "record")
	seq := 0
	start := func() (*proc, string, string, error) {
		seq++
		id := fmt.Sprintf("r%d", seq)
		port, err := freePort()
		if err != nil {
			return nil, "", "", err
		}
		probe := fmt.Sprintf("127.0.0.1:%d", port)
		args := []string{
			"--kubeconfig=" + e.direct, "--id=" + id, "--namespace=" + ns,
			"--lock=" + filepath.Join(dir, "lock"), "--record=" + record, "--probe-addr=" + probe,
		}
		if plain {
			args = append(args, "--plain")
		}
		p, err := e.procs.start("ctrl-"+id, bin, args, nil, nil)
		return p, id, probe, err
	}
	ready := func(p *proc, probe string) error {
		deadline := time.Now().Add(ctrlReadyTimeout)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if ok, _ := httpOK(ctx, "http://"+probe+"/readyz"); ok {
				return nil
			}
			if !p.running() {
				return p.failure("the replica exited before it was ready")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return p.failure("the replica was not ready in time")
	}

	leader, lid, _, err := start()
	if err != nil {
		return nil, err
	}
	if _, err := waitReconcile(ctx, record, lid, time.Time{}); err != nil {
		return nil, err
	}
	follower, fid, fprobe, err := start()
	if err != nil {
		return nil, err
	}
	var samples []time.Duration
	for trial := 0; trial < e.opts.CtrlTrials && ctx.Err() == nil; trial++ {
		if err := ready(follower, fprobe); err != nil {
			return samples, err
		}
		// Let the follower settle into following (its first read of
		// the Lease, a poll or two for controller-runtime).
		time.Sleep(e.uniform(time.Second, 3*time.Second))
		t0 := time.Now()
		leader.signal(syscall.SIGTERM)
		first, err := waitReconcile(ctx, record, fid, t0)
		if err != nil {
			return samples, err
		}
		samples = append(samples, first.Sub(t0))
		if err := leader.stop(ctrlStopTimeout); err != nil {
			return samples, err
		}
		leader, lid = follower, fid
		if follower, fid, fprobe, err = start(); err != nil {
			return samples, err
		}
		e.logf("ctrl %s trial %d: %v", map[bool]string{true: "plain", false: "elector"}[plain], trial+1, first.Sub(t0).Round(time.Millisecond))
	}
	_ = lid
	for _, p := range []*proc{leader, follower} {
		p.signal(syscall.SIGTERM)
		_ = p.stop(ctrlStopTimeout)
	}
	if bad, err := contended(record); err != nil || bad != "" {
		return samples, errors.Join(err, fmt.Errorf("two replicas reconciled at once: %s", bad))
	}
	return samples, nil
}

// waitReconcile waits for the first reconcile of replica id that started
// after since, read from the record the example appends to.
func waitReconcile(ctx context.Context, record, id string, since time.Time) (time.Time, error) {
	deadline := time.Now().Add(ctrlReadyTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if t, ok, err := firstReconcile(record, id, since); err != nil {
			return time.Time{}, err
		} else if ok {
			return t, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("replica %s did not reconcile within %v", id, ctrlReadyTimeout)
}

// firstReconcile scans the record: lines "id token start end" (Unix ns).
func firstReconcile(record, id string, since time.Time) (time.Time, bool, error) {
	f, err := os.Open(record)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 || fs[0] != id {
			continue
		}
		ns, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			continue
		}
		if t := time.Unix(0, ns); !t.Before(since) {
			return t, true, nil
		}
	}
	return time.Time{}, false, sc.Err()
}

// contended returns a CONTENDED line of the record, if any.
func contended(record string) (string, error) {
	b, err := os.ReadFile(record)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "CONTENDED") {
			return l, nil
		}
	}
	return "", nil
}

func renderCtrl(m *md, r *results) {
	if len(r.ctrl) == 0 {
		return
	}
	m.p("## controller-runtime: SIGTERM handoff")
	m.p("")
	m.p("Two replicas of the example operator (`ctrl/example`: a controller-runtime v0.25 manager whose reconciler works every 50 ms under a flock); SIGTERM to the leader at t0; measured until the other replica's first reconcile starts. %d trials per variant; 15s / 10s / 2s and `LeaderElectionReleaseOnCancel` for both; the only difference is the one line that builds the manager.", r.opts.CtrlTrials)
	m.p("")
	m.header("variant", "trials", "p50", "p99", "max")
	for _, c := range r.ctrl {
		s := c.summary()
		m.row(c.label, fmt.Sprint(s.N), dur(s.P50), dur(s.P99), dur(s.Max))
		if c.err != nil {
			m.row(c.label, "failed", "", "", oneLine(c.err.Error()))
		}
	}
	m.p("")
	m.p("controller-runtime's follower polls the Lease every RetryPeriod, so it notices the release up to 2 s late; elector's follower is told by its watch. The leader's own shutdown (stop the controllers, release) is in both numbers.")
	m.p("")
}

// httpOK reports whether GET url answers 200.
func httpOK(ctx context.Context, url string) (bool, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}
