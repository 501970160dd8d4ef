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
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/chaos/history"
	"github.com/elector-dev/elector/test/internal/legacy"
	"github.com/elector-dev/elector/test/internal/proc"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// The rollout from k8s.gcr.io/leader-elector:0.5 to elector in two
// rollouts (docs/migrating-from-leader-elector.md, section 4), on the real
// control plane, in the seed's setting: the Pods run in the app's
// namespace and 0.5 kept its lock in another one ("default" in the seed),
// so elector runs with --migrate-from=endpoints --migrate-namespace=<that
// namespace> and the RBAC of deploy/base plus deploy/migrate-from-0.5.
//
// The 0.5 Pods are the stand-in of test/leaderelector05, as
// ServiceAccount legacy.ServiceAccount of the app's namespace with 0.5's
// Role in the lock's namespace. The elector Pods run in exec mode with the
// chaos actor (test/chaos/cmd/actor) as their command; it holds an
// exclusive flock on $CHAOS_LOCK while it acts, and the stand-ins hold
// one on the same file (--lead-file) while they lead, so one lock sees
// every overlap across old and new Pods: the stand-in logs OVERLAP, the
// actor records a violation.
//
// A Deployment's rolling update is played as the controller and the
// kubelet play it: start a new Pod, wait until it is ready (/readyz for
// elector; 0.5 had no probe, so a stand-in is ready once it campaigns),
// then delete an old Pod: SIGTERM, and SIGKILL after a grace period. 0.5
// ignores SIGTERM, so its Pods always end by SIGKILL; elector exits 0 on
// SIGTERM.

const (
	// migTTL is --ttl of both: elector's must not exceed 0.5's. The
	// stand-in then renews every 1s and polls every 1s; elector renews
	// the Lease every 533ms and the old lock every 1s (its renewals are at
	// most once a second).
	migTTL = 4 * time.Second
	// migElection is the seed's election: the Lease and the Endpoints
	// object, and the name deploy/migrate-from-0.5 grants.
	migElection = "elect-nginx-deploy"
	// oldGrace is how long a deleted 0.5 Pod gets between SIGTERM, which
	// it ignores, and SIGKILL; short, since it changes nothing.
	oldGrace = 300 * time.Millisecond
	// newGrace bounds how long a deleted elector Pod may take to exit
	// after SIGTERM before it is SIGKILLed (and the test fails).
	newGrace = 15 * time.Second
)

var (
	migBuildOnce sync.Once
	migBuildErr  error
	// standIn is the stand-in of 0.5 and actor the chaos actor, built
	// once by the first migration test.
	standIn, actor string
)

// migBinaries builds the stand-in of 0.5 and the chaos actor, once.
func migBinaries(t *testing.T) {
	t.Helper()
	migBuildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { standIn, errA = legacy.Build(ctx, tmpDir) })
		wg.Go(func() {
			root, err := sidecar.RepoDir()
			if err != nil {
				errB = err
				return
			}
			actor = filepath.Join(tmpDir, "actor")
			errB = proc.GoBuild(ctx, "the chaos actor", filepath.Join(root, "test"), "build", "-o", actor, "./chaos/cmd/actor")
		})
		wg.Wait()
		migBuildErr = errors.Join(errA, errB)
		if d := time.Since(start); d > 10*time.Second {
			t.Logf("built the stand-in of leader-elector:0.5 and the chaos actor in %s", ms(d))
		}
	})
	if migBuildErr != nil {
		t.Fatal(migBuildErr)
	}
}

// pod is one replica of the rollout: a 0.5 stand-in (old) or an elector
// sidecar (new).
type pod struct {
	name    string
	old     *legacy.Replica
	new     *sidecar.Replica
	migrate bool // elector with --migrate-from
	started time.Time
	removed time.Time // when the kubelet's SIGTERM was sent
	killed  time.Time // when SIGKILL was sent (0.5 Pods)
}

func (p *pod) String() string { return p.name }

func (p *pod) done() <-chan struct{} {
	if p.old != nil {
		return p.old.Done()
	}
	return p.new.Done()
}

func (p *pod) exitCode() int {
	if p.old != nil {
		return p.old.ExitCode()
	}
	return p.new.ExitCode()
}

func (p *pod) running() bool {
	select {
	case <-p.done():
		return false
	default:
		return true
	}
}

// ended returns when an exited Pod was SIGKILLed, or now if it exited
// by itself (which checkpoint reports).
func (p *pod) ended() time.Time {
	if !p.killed.IsZero() {
		return p.killed
	}
	return time.Now()
}

func (p *pod) leaderName(ctx context.Context) (string, error) {
	if p.old != nil {
		return p.old.LeaderName(ctx)
	}
	return p.new.LeaderName(ctx)
}

func (p *pod) kind() string {
	switch {
	case p.old != nil:
		return "0.5"
	case p.migrate:
		return "elector --migrate-from"
	default:
		return "elector"
	}
}

// migration is one rollout's cluster: the app's namespace with elector's
// ServiceAccount (deploy/base) and the 0.5 Pods' ServiceAccount, and the
// namespace of the old lock with both their Roles.
type migration struct {
	t      *testing.T
	app    *sidecar.Namespace // elector's ServiceAccount
	oldSA  *sidecar.Namespace // the 0.5 Pods' ServiceAccount, same namespace
	lockNS string
	admin  kubernetes.Interface // without the warnings for v1 Endpoints
	// sameFlags: the elector Pods run with the 0.5 Pods' own flags,
	// --election-namespace=lockNS, plus --migrate-from=endpoints and no
	// --migrate-namespace: their Lease and the old lock are both in
	// lockNS.
	sameFlags bool

	lockFile, record string
	// wall and mono are one instant on the wall clock and on
	// CLOCK_MONOTONIC, the clock of the actor's record.
	wall time.Time
	mono int64

	// lags[old] are the lags of GET / on 0.5 Pods (true) and elector Pods
	// after each change of leader, as checkpoints saw them.
	lags     map[bool][]time.Duration
	reported time.Time // the start of the last tenure whose lags were taken

	mu      sync.Mutex
	stepAt  time.Time // when the last Pod was started or deleted
	pods    []*pod
	records []legacy.RecordChange // every version of the old lock's record
}

// newMigration sets up the namespaces and RBAC. With grantOldLock false,
// elector's ServiceAccount gets no Role in the lock's namespace.
func newMigration(t *testing.T, grantOldLock bool) *migration {
	t.Helper()
	return newMigrationWith(t, grantOldLock, false)
}

// newMigrationWith is newMigration; with sameFlags the elector Pods keep
// the 0.5 Pods' --election-namespace (see migration.sameFlags), and
// their ServiceAccount also gets deploy/base's Role there.
func newMigrationWith(t *testing.T, grantOldLock, sameFlags bool) *migration {
	t.Helper()
	migBinaries(t)
	base := render(t, "base")
	setElection(t, base, migElection) // as components/election-name does
	app := setup(t, base)
	m := &migration{
		t: t, app: app, sameFlags: sameFlags,
		lockNS:   fmt.Sprintf("e2e-%d-old-lock", nsCounter.Add(1)),
		lags:     map[bool][]time.Duration{},
		lockFile: filepath.Join(t.TempDir(), "lead"),
		record:   filepath.Join(t.TempDir(), "record"),
	}
	cfg := cp.AdminConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	var err error
	if m.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	if m.oldSA, err = legacy.SetupIn(c, cp, app, m.lockNS, migElection, tmpDir); err != nil {
		t.Fatal(err)
	}
	if grantOldLock {
		if err := app.GrantIn(c, m.lockNS, oldLockRBAC(t, app)); err != nil {
			t.Fatal(err)
		}
	}
	if sameFlags {
		// deploy/base applied in the lock's namespace, bound to
		// elector's ServiceAccount in the app's namespace.
		lease := &sidecar.Manifests{Role: base.Role.DeepCopy(), RoleBinding: base.RoleBinding.DeepCopy()}
		lease.RoleBinding.Subjects[0].Namespace = app.Name
		if err := app.GrantIn(c, m.lockNS, lease); err != nil {
			t.Fatal(err)
		}
	}
	m.wall, m.mono = time.Now(), history.Now()
	m.watchRecords()
	t.Cleanup(func() {
		for _, p := range m.all() {
			if p.new != nil && strings.Contains(p.new.Output(), "WARNING: DATA RACE") {
				t.Errorf("%s: the race detector found a data race in elector; see its output above", p)
			}
		}
	})
	return m
}

// setElection sets the Lease name in the Role of deploy/base.
func setElection(t *testing.T, m *sidecar.Manifests, name string) {
	t.Helper()
	old := election(t, m)
	for i, r := range m.Role.Rules {
		for j, n := range r.ResourceNames {
			if n == old {
				m.Role.Rules[i].ResourceNames[j] = name
			}
		}
	}
}

// oldLockRBAC is deploy/migrate-from-0.5 with the two values its comment
// asks to set: the election name (already the seed's) and the namespace of
// elector's ServiceAccount. It keeps its Role's name and rules.
func oldLockRBAC(t *testing.T, app *sidecar.Namespace) *sidecar.Manifests {
	t.Helper()
	dir, err := sidecar.DeployDir()
	if err != nil {
		t.Fatal(err)
	}
	m, err := sidecar.RenderRBAC(filepath.Join(dir, "migrate-from-0.5"))
	if err != nil {
		t.Fatal(err)
	}
	granted := false
	for _, r := range sidecar.Rules(m.Role) {
		if r.Resource == "endpoints" && r.Verb == "get" && r.Name == migElection {
			granted = true
		}
	}
	if !granted {
		t.Fatalf("deploy/migrate-from-0.5 does not grant get on endpoints %q: %v", migElection, sidecar.Rules(m.Role))
	}
	if len(m.RoleBinding.Subjects) != 1 || m.RoleBinding.Subjects[0].Name != app.ServiceAccount {
		t.Fatalf("deploy/migrate-from-0.5 binds %v, want ServiceAccount %s", m.RoleBinding.Subjects, app.ServiceAccount)
	}
	m.RoleBinding.Subjects[0].Namespace = app.Name
	return m
}

// watchRecords keeps every version of the old lock's record until the
// test ends.
func (m *migration) watchRecords() {
	c, cancel := context.WithCancel(context.Background())
	recs, errs, err := legacy.WatchRecords(c, m.admin, m.lockNS, migElection)
	if err != nil {
		cancel()
		m.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range recs {
			m.mu.Lock()
			m.records = append(m.records, r)
			m.mu.Unlock()
		}
	}()
	m.t.Cleanup(func() {
		cancel()
		testwait.Recv(m.t, done, "the watch of the old lock to stop")
		for {
			select {
			case err := <-errs:
				if !strings.Contains(err.Error(), "ended") {
					m.t.Errorf("watch of the old lock: %v", err)
				}
			default:
				return
			}
		}
	})
}

func (m *migration) all() []*pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.pods)
}

// live returns the Pods not deleted yet.
func (m *migration) live() []*pod {
	var out []*pod
	for _, p := range m.all() {
		if p.removed.IsZero() {
			out = append(out, p)
		}
	}
	return out
}

func (m *migration) add(p *pod) {
	m.mu.Lock()
	m.pods = append(m.pods, p)
	m.stepAt = p.started
	m.mu.Unlock()
}

// startOld starts a 0.5 Pod and waits until it campaigns: 0.5 had no
// readiness probe, so the Deployment counted it ready once it ran.
func (m *migration) startOld(name string) *pod {
	m.t.Helper()
	r, err := legacy.Start(legacy.Options{
		Binary: standIn, Kubeconfig: m.oldSA.Kubeconfig, ID: name,
		Election: migElection, Namespace: m.lockNS, TTL: migTTL,
		LeadFile: m.lockFile, Log: m.t.Output(),
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(r.Kill)
	p := &pod{name: name, old: r, started: time.Now()}
	m.add(p)
	if _, err := r.WaitFor(ctx(m.t), legacy.MsgCampaigning, 1); err != nil {
		m.t.Fatal(err)
	}
	return p
}

// startNew starts an elector Pod in exec mode running the actor, with
// --migrate-from when migrate, and waits until /readyz is 200.
func (m *migration) startNew(name string, migrate bool) *pod {
	m.t.Helper()
	extra := []string{"--ttl=" + migTTL.String()}
	switch {
	case migrate && m.sameFlags:
		// The 0.5 Pods' flags plus --migrate-from only: elector must
		// look for the old lock where 0.5 kept it.
		extra = append(extra, "--election-namespace="+m.lockNS, "--migrate-from=endpoints")
	case m.sameFlags:
		extra = append(extra, "--election-namespace="+m.lockNS)
	case migrate:
		extra = append(extra, "--migrate-from=endpoints", "--migrate-namespace="+m.lockNS)
	}
	args := append(sidecar.LocalArgs([]string{"--election=" + migElection, "--http=0.0.0.0:4444"}, extra...), "--", actor)
	r, err := sidecar.Start(sidecar.Options{
		Binary: electorBin, Kubeconfig: m.app.Kubeconfig, PodName: name, PodNamespace: m.app.Name,
		Args: args, Log: m.t.Output(),
		Env: []string{
			"CHAOS_LOCK=" + m.lockFile, "CHAOS_RECORD=" + m.record,
			"CHAOS_BEAT=200ms", "CHAOS_MAX_LIFETIME=10m",
		},
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(r.Kill)
	p := &pod{name: name, new: r, migrate: migrate, started: time.Now()}
	m.add(p)
	c := ctx(m.t)
	for {
		resp, err := r.Get(c, "/readyz")
		if err == nil && resp.Status == http.StatusOK {
			return p
		}
		select {
		case <-r.Done():
			m.t.Fatalf("%s exited with code %d before it was ready:\n%s", name, r.ExitCode(), r.Output())
		case <-c.Done():
			m.t.Fatalf("%s not ready: %v %v", name, resp, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// remove deletes a Pod as the kubelet does: SIGTERM, then SIGKILL after
// the grace period. A 0.5 Pod ignores SIGTERM and is SIGKILLed after
// oldGrace; an elector Pod must exit 0 within newGrace.
func (m *migration) remove(p *pod) {
	m.t.Helper()
	p.removed = time.Now()
	m.mu.Lock()
	m.stepAt = p.removed
	m.mu.Unlock()
	if p.old != nil {
		if err := p.old.Term(); err != nil {
			m.t.Fatal(err)
		}
		time.Sleep(oldGrace)
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.old.WaitFor(c, legacy.MsgIgnoredSignal, 1); err != nil {
			m.t.Errorf("%s did not ignore SIGTERM as 0.5 did: %v", p, err)
		}
		p.killed = time.Now()
		p.old.Kill()
		return
	}
	if err := p.new.Signal(syscall.SIGTERM); err != nil {
		m.t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), newGrace)
	defer cancel()
	code, err := p.new.Wait(c)
	if err != nil {
		p.killed = time.Now()
		p.new.Kill()
		m.t.Errorf("%s did not exit within %s of SIGTERM; SIGKILLed", p, newGrace)
		return
	}
	if code != 0 {
		m.t.Errorf("%s exited with code %d after SIGTERM, want 0", p, code)
	}
}

// tenure is one time a Pod acted as leader: a stand-in between its
// "Started leading" and its end, an elector's actor between its start and
// stop.
type tenure struct {
	pod        *pod
	start, end time.Time // end zero: acts still
}

// tenures assembles every tenure so far, in order of start.
func (m *migration) tenures() []tenure {
	var out []tenure
	pods := map[string]*pod{}
	for _, p := range m.all() {
		pods[p.name] = p
		if p.old == nil {
			continue
		}
		var cur *tenure
		for _, e := range p.old.Events("") {
			switch e.Msg {
			case legacy.MsgStarted:
				cur = &tenure{pod: p, start: e.At}
			case legacy.MsgStopped:
				if cur != nil {
					cur.end = e.At
					out = append(out, *cur)
					cur = nil
				}
			}
		}
		if cur != nil {
			if !p.running() {
				cur.end = p.ended() // 0.5 ends by SIGKILL only
			}
			out = append(out, *cur)
		}
	}
	evs, _ := history.Read(m.record) // absent before the first actor starts
	open := map[string]int{}
	for _, e := range evs {
		p := pods[e.Who]
		if p == nil {
			continue
		}
		switch e.Kind {
		case history.Start:
			open[e.Who] = len(out)
			out = append(out, tenure{pod: p, start: m.wallAt(e.At)})
		case history.Stop:
			if i, ok := open[e.Who]; ok {
				out[i].end = m.wallAt(e.At)
				delete(open, e.Who)
			}
		}
	}
	for who, i := range open {
		if p := pods[who]; !p.running() {
			out[i].end = p.ended() // the watchdog killed the actor with elector
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

func (m *migration) wallAt(mono int64) time.Time { return m.wall.Add(time.Duration(mono - m.mono)) }

// acting returns the Pods that act as leader now.
func (m *migration) acting() []tenure {
	var out []tenure
	for _, tn := range m.tenures() {
		if tn.end.IsZero() {
			out = append(out, tn)
		}
	}
	return out
}

// checkpoint waits until exactly one Pod acts and every Pod not deleted
// names it on GET /, at one sweep over them. It returns the leader's
// tenure and, if the leader started acting after the last step (a Pod
// started or deleted), each earlier Pod's lag: how long after the
// leader's start the Pod first named it.
func (m *migration) checkpoint(label string) (tenure, map[*pod]time.Duration) {
	m.t.Helper()
	c := ctx(m.t)
	m.mu.Lock()
	step := m.stepAt
	m.mu.Unlock()
	var (
		leader *pod
		first  map[*pod]time.Time
		last   string
	)
	for {
		for _, p := range m.live() {
			if !p.running() {
				out := ""
				if p.new != nil {
					out = p.new.Output()
				} else {
					out = p.old.Output()
				}
				m.t.Fatalf("%s: %s (%s) exited with code %d while nobody deleted it:\n%s", label, p, p.kind(), p.exitCode(), out)
			}
		}
		act := m.acting()
		if len(act) > 1 {
			m.t.Errorf("%s: %d Pods act at once: %v", label, len(act), act)
		}
		if len(act) == 1 {
			l := act[0]
			if l.pod != leader {
				leader, first = l.pod, map[*pod]time.Time{}
			}
			all := true
			var disagree []string
			for _, p := range m.live() {
				name, err := p.leaderName(c)
				now := time.Now()
				if err == nil && name == l.pod.name {
					if first[p].IsZero() {
						first[p] = now
					}
					continue
				}
				all = false
				disagree = append(disagree, fmt.Sprintf("%s names %q (%v)", p, name, err))
			}
			last = fmt.Sprintf("%s acts since %s; %s", l.pod, l.start.Format("15:04:05.000"), strings.Join(disagree, "; "))
			if all && len(m.acting()) == 1 {
				m.checkLeaderEndpoint(label, l.pod)
				if !l.start.After(step) || l.start.Equal(m.reported) {
					m.t.Logf("%s: %s (%s) acts; all %d Pods name it on GET /", label, l.pod, l.pod.kind(), len(m.live()))
					return l, nil
				}
				m.reported = l.start
				lags := map[*pod]time.Duration{}
				var desc []string
				for _, p := range m.live() {
					if p.started.Before(l.start) {
						lags[p] = max(first[p].Sub(l.start), 0)
						m.lags[p.old != nil] = append(m.lags[p.old != nil], lags[p])
						desc = append(desc, fmt.Sprintf("%s (%s) %s", p, p.kind(), ms(lags[p])))
					}
				}
				m.t.Logf("%s: %s (%s) acts since %s; all %d Pods name it on GET /; lag after its start: %s",
					label, l.pod, l.pod.kind(), l.start.Format("15:04:05.000"), len(m.live()), strings.Join(desc, ", "))
				return l, lags
			}
		} else {
			last = fmt.Sprintf("%d Pods act", len(act))
		}
		select {
		case <-c.Done():
			m.t.Fatalf("%s: no single leader named by every Pod: %s", label, last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// checkLeaderEndpoint checks elector's GET /leader on every elector Pod
// while leader acts: it names the acting leader, and isLeader is true on
// it only. In migration mode a Pod that holds the Lease but waits for the
// old lock does not act, and must not say it leads.
func (m *migration) checkLeaderEndpoint(label string, leader *pod) {
	m.t.Helper()
	for _, p := range m.live() {
		if p.new == nil {
			continue
		}
		l, err := p.new.Leader(ctx(m.t))
		if err != nil {
			m.t.Fatal(err)
		}
		if l.IsLeader != (p == leader) || l.Name != leader.name {
			m.t.Errorf("%s: GET /leader on %s (%s) says isLeader %t, name %q while %s (%s) acts: %+v",
				label, p, p.kind(), l.IsLeader, l.Name, leader, leader.kind(), l)
		}
	}
}

// noOverlaps fails the test for any overlap seen by the flock (a
// stand-in's OVERLAP, an actor's violation) or by the tenures' times, and
// returns the tenures.
func (m *migration) noOverlaps() []tenure {
	m.t.Helper()
	for _, p := range m.all() {
		if p.old == nil {
			continue
		}
		for _, e := range p.old.Overlaps() {
			m.t.Errorf("OVERLAP: 0.5 Pod %s started leading while another leader held the lock file: %s", p, e.Line)
		}
	}
	evs, err := history.Read(m.record)
	if err != nil {
		m.t.Fatalf("no actor ever ran: %v", err)
	}
	rep := history.Check(evs, history.Options{})
	for _, v := range rep.Violations {
		m.t.Errorf("OVERLAP: an actor started while another leader held the lock file: %s", v)
	}
	for _, o := range rep.Overlaps {
		m.t.Errorf("OVERLAP: actors: %s", o)
	}
	ts := m.tenures()
	var desc []string
	for i, tn := range ts {
		end := "still"
		if !tn.end.IsZero() {
			end = tn.end.Format("15:04:05.000")
		}
		desc = append(desc, fmt.Sprintf("%s (%s) %s-%s", tn.pod, tn.pod.kind(), tn.start.Format("15:04:05.000"), end))
		if i > 0 && (ts[i-1].end.IsZero() || ts[i-1].end.After(tn.start)) {
			m.t.Errorf("OVERLAP: %s (%s) started acting at %s while %s (%s) acted (until %v)",
				tn.pod, tn.pod.kind(), tn.start.Format("15:04:05.000"), ts[i-1].pod, ts[i-1].pod.kind(), ts[i-1].end)
		}
	}
	m.t.Logf("tenures: %s", strings.Join(desc, "; "))
	m.t.Logf("GET / lag after each change of leader: 0.5 Pods %s, elector Pods %s", msList(m.lags[true]), msList(m.lags[false]))
	return ts
}

// handoff returns the first tenure of kind new (elector) after the last
// tenure of the other kind, and that last one.
func handoff(ts []tenure, toNew bool) (from, to tenure, ok bool) {
	for i := 1; i < len(ts); i++ {
		if (ts[i].pod.new != nil) == toNew && (ts[i-1].pod.new != nil) != toNew {
			from, to, ok = ts[i-1], ts[i], true
		}
	}
	return from, to, ok
}

// recordHistory returns the versions of the old lock's record seen so far.
func (m *migration) recordHistory() []legacy.RecordChange {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records)
}

// lastRecordOf returns the last record of holder seen before before.
func (m *migration) lastRecordOf(holder string, before time.Time) (legacy.RecordChange, bool) {
	var out legacy.RecordChange
	found := false
	for _, r := range m.recordHistory() {
		if r.HolderIdentity == holder && r.Seen.Before(before) {
			out, found = r, true
		}
	}
	return out, found
}

// firstRecordOf returns the first record of holder seen after after.
func (m *migration) firstRecordOf(holder string, after time.Time) (legacy.RecordChange, bool) {
	for _, r := range m.recordHistory() {
		if r.HolderIdentity == holder && r.Seen.After(after) {
			return r, true
		}
	}
	return legacy.RecordChange{}, false
}

// rollForward plays Rollout 1 from three 0.5 Pods to three elector Pods
// in migration mode, replacing the old leader first or last.
func rollForward(t *testing.T, leaderFirst bool) {
	rollForwardWith(newMigration(t, true), leaderFirst)
}

// rollForwardWith is rollForward in the migration m.
func rollForwardWith(m *migration, leaderFirst bool) {
	t := m.t
	var olds []*pod
	for i := range 3 {
		olds = append(olds, m.startOld(fmt.Sprintf("old-%d", i)))
	}
	lead, _ := m.checkpoint("three 0.5 Pods")
	order := slices.DeleteFunc(slices.Clone(olds), func(p *pod) bool { return p == lead.pod })
	if leaderFirst {
		order = append([]*pod{lead.pod}, order...)
	} else {
		order = append(order, lead.pod)
	}
	for i, old := range order {
		nw := m.startNew(fmt.Sprintf("new-%d", i), true)
		l, _ := m.checkpoint(fmt.Sprintf("step %d: %s started and ready", i+1, nw))
		if l.pod != lead.pod {
			t.Errorf("step %d: %s acts after %s started; the leader changed from %s while no Pod was deleted", i+1, l.pod, nw, lead.pod)
		}
		m.remove(old)
		lead, _ = m.checkpoint(fmt.Sprintf("step %d: %s deleted (it led: %t)", i+1, old, l.pod == old))
	}
	final, _ := m.checkpoint("three elector Pods")
	if final.pod.new == nil || !final.pod.migrate {
		t.Errorf("%s (%s) acts at the end, want an elector Pod", final.pod, final.pod.kind())
	}
	rec, err := legacy.ReadRecord(ctx(t), m.admin, m.lockNS, migElection)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != final.pod.name || rec.LeaseDurationSeconds != int(migTTL/time.Second) {
		t.Errorf("the old lock's record %+v, want held by %s for %s", rec, final.pod, migTTL)
	}
	ts := m.noOverlaps()
	from, to, ok := handoff(ts, true)
	if !ok {
		t.Fatalf("no handoff from a 0.5 Pod to an elector Pod in %v", ts)
	}
	renewed, _ := m.lastRecordOf(from.pod.name, from.pod.killed)
	took, _ := m.firstRecordOf(to.pod.name, from.pod.killed)
	t.Logf("handoff 0.5 -> elector: %s (killed at %s, its last renewal seen %s before) -> %s: its record seen %s and its command started %s after the SIGKILL (ttl %s)",
		from.pod, from.pod.killed.Format("15:04:05.000"), ms(from.pod.killed.Sub(renewed.Seen)),
		to.pod, ms(took.Seen.Sub(from.pod.killed)), ms(to.start.Sub(from.pod.killed)), migTTL)
	// Not a timing assertion but the safety bound of the guide: elector
	// takes the old lock only a full ttl after it saw the 0.5 holder's
	// record change. Both records are seen by the same watch; the margin
	// is for its latency on the last renewal.
	if waited := took.Seen.Sub(renewed.Seen); waited < migTTL-migTTL/4 {
		t.Errorf("%s took the old lock %s after %s's last renewal, before its lease of %s passed", to.pod, ms(waited), from.pod, migTTL)
	}
}

// TestMigrationOldLeaderReplacedLast: Rollout 1 as a Deployment does it,
// three 0.5 Pods replaced one at a time by elector Pods with
// --migrate-from=endpoints, the old leader last: no two leaders at any
// moment (flock and tenures), exactly one elector Pod leads at the end,
// and at each checkpoint every Pod, old and new, names the acting leader
// on GET /.
func TestMigrationOldLeaderReplacedLast(t *testing.T) {
	t.Parallel()
	rollForward(t, false)
}

// TestMigrationKeepsElectionNamespace (issue 19): a 0.5 user ran
// leader-elector:0.5 with --election-namespace=X, so 0.5 kept its lock in
// X. The elector Pods get the same flags plus --migrate-from=endpoints and
// no --migrate-namespace: they must look for the old lock in X, where the
// 0.5 Pods hold it (they used to look in "default", exit 4 and print a
// Role for "default", which, once applied, made two leaders). Rollout 1
// as above, the old leader last: 0 overlaps, the Lease and the old lock
// both in X, and nothing in "default".
func TestMigrationKeepsElectionNamespace(t *testing.T) {
	t.Parallel()
	m := newMigrationWith(t, true, true)
	rollForwardWith(m, false)
	c := ctx(t)
	if _, err := m.admin.CoordinationV1().Leases(m.lockNS).Get(c, migElection, metav1.GetOptions{}); err != nil {
		t.Errorf("the Lease is not in %s, the --election-namespace of both: %v", m.lockNS, err)
	}
	if _, err := m.admin.CoreV1().Endpoints("default").Get(c, migElection, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("an Endpoints lock default/%s exists (%v): elector took an old lock where the 0.5 Pods had none", migElection, err)
	}
	for _, p := range m.all() {
		if p.new != nil && strings.Contains(p.new.Output(), "oldLock=endpoints/default/") {
			t.Errorf("%s used the old lock in default:\n%s", p, p.new.Output())
		}
	}
}

// TestMigrationOldLeaderReplacedFirst: as above, the old leader first,
// while two 0.5 Pods still campaign for the old lock.
func TestMigrationOldLeaderReplacedFirst(t *testing.T) {
	t.Parallel()
	rollForward(t, true)
}

// TestMigrationRollBack: from three elector Pods in migration mode back
// to three 0.5 Pods, one at a time: no two leaders, a 0.5 Pod leads at
// the end, named by all.
func TestMigrationRollBack(t *testing.T) {
	t.Parallel()
	m := newMigration(t, true)
	var news []*pod
	for i := range 3 {
		news = append(news, m.startNew(fmt.Sprintf("new-%d", i), true))
	}
	lead, _ := m.checkpoint("three elector Pods")
	// The leader first: the other elector Pods race the returning 0.5
	// Pod for the released lock.
	order := slices.DeleteFunc(slices.Clone(news), func(p *pod) bool { return p == lead.pod })
	order = append([]*pod{lead.pod}, order...)
	for i, nw := range order {
		old := m.startOld(fmt.Sprintf("old-%d", i))
		m.checkpoint(fmt.Sprintf("step %d: %s started", i+1, old))
		m.remove(nw)
		m.checkpoint(fmt.Sprintf("step %d: %s deleted", i+1, nw))
	}
	final, _ := m.checkpoint("three 0.5 Pods")
	if final.pod.old == nil {
		t.Errorf("%s (%s) acts at the end, want a 0.5 Pod", final.pod, final.pod.kind())
	}
	ts := m.noOverlaps()
	if from, to, ok := handoff(ts, false); ok {
		released, _ := m.firstRecordOf("", from.end.Add(-time.Second))
		t.Logf("handoff elector -> 0.5: %s (its command stopped at %s, the old lock released %s later) -> %s led %s after the command stopped (ttl %s: 0.5 waits out an empty holder)",
			from.pod, from.end.Format("15:04:05.000"), ms(released.Seen.Sub(from.end)), to.pod, ms(to.start.Sub(from.end)), migTTL)
	} else {
		t.Fatalf("no handoff from an elector Pod to a 0.5 Pod in %v", ts)
	}
}

// TestMigrationLeave: Rollout 2, from three elector Pods with
// --migrate-from to three without, one at a time: no two leaders while
// Pods with and without the flag mix; at the end one leads, and the old
// lock is released and left alone.
func TestMigrationLeave(t *testing.T) {
	t.Parallel()
	m := newMigration(t, true)
	var migrating []*pod
	for i := range 3 {
		migrating = append(migrating, m.startNew(fmt.Sprintf("mig-%d", i), true))
	}
	m.checkpoint("three elector Pods in migration mode")
	for i, old := range migrating {
		nw := m.startNew(fmt.Sprintf("new-%d", i), false)
		m.checkpoint(fmt.Sprintf("step %d: %s started and ready", i+1, nw))
		m.remove(old)
		m.checkpoint(fmt.Sprintf("step %d: %s deleted", i+1, old))
	}
	final, _ := m.checkpoint("three elector Pods without migration")
	if final.pod.new == nil || final.pod.migrate {
		t.Errorf("%s (%s) acts at the end, want an elector Pod without --migrate-from", final.pod, final.pod.kind())
	}
	m.noOverlaps()
	rec, err := legacy.ReadRecord(ctx(t), m.admin, m.lockNS, migElection)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != "" {
		t.Errorf("the old lock's record names %q after the last Pod in migration mode left, want released (\"\")", rec.HolderIdentity)
	}
	time.Sleep(2 * time.Second) // nothing renews it any more
	again, err := legacy.ReadRecord(ctx(t), m.admin, m.lockNS, migElection)
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != rec.ResourceVersion {
		t.Errorf("the old lock's record changed after migration mode ended: %+v, then %+v", rec, again)
	}
}

// TestMigrationOldLockPermissionMissing: an elector Pod with
// --migrate-from=endpoints whose ServiceAccount has deploy/base's Role but
// nothing in the old lock's namespace exits 4 at start (after its 15s of
// re-checks), naming exactly the old lock's permissions in that namespace,
// and prints the Role that deploy/migrate-from-0.5 ships; applying the
// printed Role is enough.
func TestMigrationOldLockPermissionMissing(t *testing.T) {
	t.Parallel()
	m := newMigration(t, false)
	args := sidecar.LocalArgs([]string{"--election=" + migElection, "--http=0.0.0.0:4444"},
		"--ttl="+migTTL.String(), "--migrate-from=endpoints", "--migrate-namespace="+m.lockNS)
	begin := time.Now()
	r := start(t, m.app, "new-0", args...)
	if code := exitCode(t, r); code != exitForbidden {
		t.Fatalf("exit code %d, want %d (forbidden); output:\n%s", code, exitForbidden, r.Output())
	}
	t.Logf("exited %d after %s", exitForbidden, ms(time.Since(begin)))
	stderr := r.Stderr()
	t.Logf("stderr:\n%s", stderr)
	want := rbac.OldLockRules("endpoints", migElection)
	var names []string
	for _, rule := range want {
		names = append(names, rule.String())
	}
	summary := fmt.Sprintf("elector: ServiceAccount %s/%s lacks %d permissions in namespace %s: ", m.app.Name, m.app.ServiceAccount, len(want), m.lockNS)
	var got []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "elector: ") && strings.Contains(line, " lacks ") {
			got = append(got, line)
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], summary) {
		t.Errorf("summary lines %q, want one starting %q", got, summary)
	} else {
		for _, n := range names {
			if !strings.Contains(got[0], n) {
				t.Errorf("the summary does not name %s: %s", n, got[0])
			}
		}
	}
	checkNoClusterAdmin(t, stderr)
	role, binding := printedFix(t, stderr)
	shipped := oldLockRBAC(t, m.app)
	if role.Namespace != m.lockNS || binding.Namespace != m.lockNS {
		t.Errorf("the printed Role is for namespace %q and its binding %q, want %q", role.Namespace, binding.Namespace, m.lockNS)
	}
	if !sameRules(sidecar.Rules(role), want) || !sameRules(sidecar.Rules(role), sidecar.Rules(shipped.Role)) {
		t.Errorf("the printed Role grants %v; want %v, as deploy/migrate-from-0.5 grants %v", sidecar.Rules(role), want, sidecar.Rules(shipped.Role))
	}
	if role.Name != shipped.Role.Name {
		t.Logf("the printed Role is named %s, deploy/migrate-from-0.5's %s", role.Name, shipped.Role.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != m.app.ServiceAccount || binding.Subjects[0].Namespace != m.app.Name {
		t.Errorf("the printed RoleBinding binds %+v, want ServiceAccount %s/%s", binding.Subjects, m.app.Name, m.app.ServiceAccount)
	}

	// The printed fix is enough: the next Pod takes the Lease and the old
	// lock, and names itself.
	if err := m.app.GrantIn(ctx(t), m.lockNS, &sidecar.Manifests{Role: role, RoleBinding: binding}); err != nil {
		t.Fatal(err)
	}
	fixed := start(t, m.app, "new-1", args...)
	c := ctx(t)
	for {
		rec, err := legacy.ReadRecord(c, m.admin, m.lockNS, migElection)
		name, nerr := fixed.LeaderName(c)
		if err == nil && rec.HolderIdentity == fixed.Name && nerr == nil && name == fixed.Name {
			break
		}
		select {
		case <-fixed.Done():
			t.Fatalf("%s exited with code %d with the printed Role applied:\n%s", fixed.Name, fixed.ExitCode(), fixed.Output())
		case <-c.Done():
			t.Fatalf("%s does not hold the old lock with the printed Role applied: record %+v (%v), GET / %q (%v)", fixed.Name, rec, err, name, nerr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestMigrationWatchFollowsTheActingLeader: in migration mode /watch must
// follow the acting leader (the old lock's holder) as GET / and GET
// /leader do: /watch sends "one event per change of holder, token or
// isLeader", with the body of /leader. An elector Pod that holds the Lease
// while a 0.5 Pod leads reports that 0.5 Pod with isLeader false; once the
// 0.5 Pod is gone and the elector Pod takes the old lock and starts its
// command, its /watch must send an event naming it with isLeader true,
// and a follower's /watch one naming it.
func TestMigrationWatchFollowsTheActingLeader(t *testing.T) {
	t.Parallel()
	m := newMigration(t, true)
	old := m.startOld("old-0")
	m.checkpoint("one 0.5 Pod")
	a := m.startNew("new-0", true) // takes the Lease, waits for the old lock
	b := m.startNew("new-1", true)
	m.checkpoint("two elector Pods started")
	streams := map[*pod]<-chan sidecar.Leader{a: watch(t, a.new), b: watch(t, b.new)}
	last := map[*pod]sidecar.Leader{}
	// await reads the streams until ok holds for the last event of each,
	// or for at most d, and reports whether it held.
	await := func(d time.Duration, ok func(p *pod, l sidecar.Leader) bool) bool {
		deadline := time.After(d)
		for {
			all := true
			for p := range streams {
				all = all && ok(p, last[p])
			}
			if all {
				return true
			}
			select {
			case l := <-streams[a]:
				last[a] = l
			case l := <-streams[b]:
				last[b] = l
			case <-deadline:
				return false
			}
		}
	}
	if !await(guard, func(_ *pod, l sidecar.Leader) bool { return l.Name == old.name && !l.IsLeader }) {
		t.Fatalf("/watch on the elector Pods: %v while %s leads, want it named, isLeader false", last, old)
	}
	m.remove(old)
	l, _ := m.checkpoint("the 0.5 Pod deleted")
	if l.pod != a {
		t.Fatalf("%s acts, want %s, which held the Lease", l.pod, a)
	}
	// GET / and GET /leader name the new leader now (checkpoint); /watch
	// must have said so too, allowing 5s for the delivery.
	if !await(5*time.Second, func(p *pod, got sidecar.Leader) bool { return got.Name == a.name && got.IsLeader == (p == a) }) {
		for p, got := range last {
			t.Errorf("%s's /watch last sent %+v; %s after %s took the old lock (GET / and /leader name it): want name %s, isLeader %t",
				p, got, ms(time.Since(l.start)), a, a, p == a)
		}
	}
}
