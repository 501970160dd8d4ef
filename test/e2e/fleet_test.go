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
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// kubeletRestartDelay is how long an exited replica of a fleet that
// restarts stays down, like a container the kubelet restarts (without its
// back-off).
const kubeletRestartDelay = 200 * time.Millisecond

// fleet is a set of sidecar replicas of one election, one process per Pod
// name at a time. A fleet that restarts (restart) starts a replica again
// when it exits, as the kubelet restarts a container; every exit is
// recorded either way.
type fleet struct {
	t       *testing.T
	label   string
	n       *sidecar.Namespace
	args    []string
	env     []string
	restart bool
	// lockLog, in exec mode with the lock holder, is its log.
	lockLog string

	mu      sync.Mutex
	cur     map[string]*sidecar.Replica // by Pod name
	all     []*sidecar.Replica          // every process started
	exits   []exitRecord
	closing bool
	wg      sync.WaitGroup
}

// exitRecord is a replica process that exited while the fleet ran.
type exitRecord struct {
	pod    string
	code   int
	at     time.Time
	output string
}

// newFleet starts one replica per pod. It is stopped (every process
// killed) when the test ends.
func newFleet(t *testing.T, label string, n *sidecar.Namespace, args, env []string, restart bool, pods ...string) *fleet {
	t.Helper()
	f := &fleet{t: t, label: label, n: n, args: args, env: env, restart: restart, cur: map[string]*sidecar.Replica{}}
	t.Cleanup(f.close)
	for _, pod := range pods {
		if err := f.start(pod); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// newExecFleet is newFleet in exec mode: each replica runs the lock holder
// (see lockHolder) while it leads, all on one lock file, so that two
// commands running at once show as a "violation" line in f.lockLog.
func newExecFleet(t *testing.T, label string, n *sidecar.Namespace, args []string, restart bool, pods ...string) *fleet {
	t.Helper()
	self, env, lockLog := lockHolderCommand(t)
	args = append(slices.Clone(args), "--", self)
	f := &fleet{t: t, label: label, n: n, args: args, env: env, restart: restart, lockLog: lockLog, cur: map[string]*sidecar.Replica{}}
	t.Cleanup(f.close)
	for _, pod := range pods {
		if err := f.start(pod); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// start starts a process for pod. The lock is held while it starts, so
// that close either sees the process or stops the restart.
func (f *fleet) start(pod string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return nil
	}
	r, err := sidecar.Start(sidecar.Options{
		Binary: electorBin, Kubeconfig: f.n.Kubeconfig,
		PodName: pod, PodNamespace: f.n.Name,
		Args: f.args, Env: f.env, Log: f.t.Output(),
	})
	if err != nil {
		return fmt.Errorf("%s: %w", f.label, err)
	}
	f.cur[pod] = r
	f.all = append(f.all, r)
	f.wg.Go(func() { f.monitor(pod, r) })
	return nil
}

// monitor records the exit of r and, in a fleet that restarts, starts pod
// again.
func (f *fleet) monitor(pod string, r *sidecar.Replica) {
	<-r.Done()
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return
	}
	f.exits = append(f.exits, exitRecord{pod: pod, code: r.ExitCode(), at: time.Now(), output: r.Output()})
	f.mu.Unlock()
	if !f.restart {
		return
	}
	time.Sleep(kubeletRestartDelay)
	if err := f.start(pod); err != nil {
		f.t.Errorf("unable to restart %s: %v", pod, err)
	}
}

// close kills every process and waits for the monitors, then checks the
// outputs for data races.
func (f *fleet) close() {
	f.mu.Lock()
	f.closing = true
	all := slices.Clone(f.all)
	f.mu.Unlock()
	for _, r := range all {
		r.Kill()
	}
	testwait.Call(f.t, f.label+": the monitors to see every replica exit", f.wg.Wait)
	for _, r := range all {
		if strings.Contains(r.Output(), "WARNING: DATA RACE") {
			f.t.Errorf("%s %s: the race detector found a data race in elector; see its output above", f.label, r.Name)
		}
	}
}

// replicas returns the current process of each Pod, sorted by name.
func (f *fleet) replicas() []*sidecar.Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []*sidecar.Replica
	for _, r := range f.cur {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *sidecar.Replica) int { return strings.Compare(a.Name, b.Name) })
	return rs
}

// processes returns every process started so far.
func (f *fleet) processes() []*sidecar.Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.all)
}

// takeExits returns the exits recorded since the last call.
func (f *fleet) takeExits() []exitRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.exits
	f.exits = nil
	return e
}

// agreement is one poll of GET /leader on every replica of a fleet.
type agreement struct {
	leader  string // the one name every replica reports; "" if they differ
	token   int64
	leaders int      // replicas that say isLeader
	ok      bool     // one name, exactly one replica says isLeader, and it is that name
	views   []string // for messages
}

// poll asks every current replica for /leader once.
func (f *fleet) poll(ctx context.Context) agreement {
	var a agreement
	names := map[string]bool{}
	var leaderOK bool
	for _, r := range f.replicas() {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		l, err := r.Leader(rctx)
		cancel()
		if err != nil {
			a.views = append(a.views, fmt.Sprintf("%s: %v", r.Name, err))
			names["?"+r.Name] = true
			continue
		}
		a.views = append(a.views, fmt.Sprintf("%s: name=%q isLeader=%t token=%d error=%q", r.Name, l.Name, l.IsLeader, l.Token, l.Error))
		names[l.Name] = true
		if l.IsLeader {
			a.leaders++
			leaderOK = l.Name == r.Name && l.Identity == r.Name
			a.token = l.Token
		}
	}
	if len(names) == 1 {
		for n := range names {
			a.leader = n
		}
	}
	a.ok = a.leader != "" && a.leaders == 1 && leaderOK
	return a
}

// commandRuns reports whether the command of tenure token runs: the
// last command that the lock log shows started is that tenure's, and it
// has not stopped. It also returns the log's violations (two commands at
// once).
func (f *fleet) commandRuns(token int64) (running bool, violations []string) {
	data, err := os.ReadFile(f.lockLog)
	if err != nil {
		return false, nil
	}
	want := strconv.FormatInt(token, 10)
	for _, line := range strings.Split(string(data), "\n") {
		fs := strings.Fields(line)
		switch {
		case len(fs) < 2:
		case fs[0] == "violation":
			violations = append(violations, line)
		case fs[0] == "start":
			running = fs[1] == want
		case fs[0] == "stop" && fs[1] == want:
			running = false
		}
	}
	return running, violations
}
