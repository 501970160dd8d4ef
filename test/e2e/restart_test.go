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
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

const (
	// restartTTL is the --ttl of the restart and permission tests: the
	// leader renews every 667ms, stops its work 2s after its last renewal
	// and must have stopped by 3s; followers wait out 5s.
	restartTTL = 5 * time.Second
	// restarts is how many times TestAPIServerRestarts restarts
	// kube-apiserver.
	restarts = 10
	// agreeGuard is the failure deadline for replicas to agree on one
	// leader once kube-apiserver is ready again. The target is lease + 3s
	// (8s); it is logged, not asserted.
	agreeGuard = 30 * time.Second
	// envSeed, when set, seeds the outage durations of
	// TestAPIServerRestarts, to replay a run.
	envSeed = "ELECTOR_E2E_SEED"
)

// deniedRE finds a sidecar's log lines about a denied request: the
// library's runtime retry, the start-up re-checks of permissions and of
// credentials.
var deniedRE = regexp.MustCompile(`(?i)permission denied|permissions missing|rejected the credentials|forbidden|unauthorized`)

// TestAPIServerRestarts stops kube-apiserver (SIGTERM) and starts it again
// on the same etcd ten times, down 2-6s each time, while two fleets of
// three sidecars at --ttl=5s campaign: one in exec mode running the lock
// holder, which detects two commands running at once, and one without a
// command. Every outage outlasts the leader's stop point (2s), so the
// leader stops its work each time:
//
//   - without a command, no sidecar may exit, and each keeps answering
//     HTTP through the outage (/readyz and /healthz 200);
//   - in exec mode a leader that loses the Lease exits 6 (ExitLost, by
//     design: the command is stopped and a restart gives it a clean
//     start). The fleet restarts it as the kubelet would; any other exit
//     fails the test, and a replica restarted while kube-apiserver is
//     down must wait for it, serving HTTP (/readyz 503, GET / {"name":""});
//   - no two commands ever run at once;
//   - after each restart, every replica of both fleets agrees on one
//     leader (same name on /leader, exactly one isLeader), and in exec
//     mode that leader's command runs. The time from kube-apiserver's
//     /readyz to agreement is logged (target: lease + 3s), asserted only
//     against agreeGuard.
//
// A probe with the sidecars' ServiceAccount token reads the Lease
// throughout each outage and logs the denials (403, 401) that a
// kube-apiserver answers while its caches fill.
func TestAPIServerRestarts(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("$%s=%q: %v", envSeed, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with %s=%d)", seed, envSeed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	m := render(t, "base")
	lease := election(t, m)
	args := sidecar.LocalArgs([]string{"--election=" + lease, "--http=0.0.0.0:4444"}, "--ttl="+restartTTL.String())
	execNS, plainNS := setup(t, m), setup(t, m)
	execF := newExecFleet(t, "exec", execNS, args, true, "exec-0", "exec-1", "exec-2")
	plainF := newFleet(t, "plain", plainNS, args, nil, false, "plain-0", "plain-1", "plain-2")
	fleets := []*fleet{execF, plainF}

	// kube-apiserver runs again when the test ends, whatever happens.
	apiDown := false
	t.Cleanup(func() {
		if apiDown {
			if err := cp.StartAPIServer(context.Background()); err != nil {
				t.Errorf("unable to start kube-apiserver again: %v", err)
			}
		}
	})

	probe, err := newDenialProbe(t, plainNS, lease)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.close()

	// The first election.
	first, err := waitAgreement(ctx(t), fleets)
	if err != nil {
		t.Fatal(err)
	}
	probeReadiness(t, fleets)
	t.Logf("first election: exec fleet led by %s, plain fleet by %s", first[0].leader, first[1].leader)
	prevExec, prev := first[0], first

	var (
		agreeTimes  [2][]time.Duration // from /readyz to agreement, per fleet
		electTimes  [2][]time.Duration // from /readyz to one leader (running its command)
		deniedProbe int                // outages where the probe saw a denial
		deniedLogs  int                // outages where a sidecar logged a denial
		execExits   int
	)
	start := time.Now()
	for i := 1; i <= restarts; i++ {
		down := 2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
		logOffsets := map[*sidecar.Replica]int{}
		for _, f := range fleets {
			for _, r := range f.processes() {
				logOffsets[r] = len(r.Output())
			}
		}
		restartedBefore := len(execF.processes())

		probe.begin()
		t0 := time.Now()
		cp.StopAPIServer()
		apiDown = true
		stopped := time.Now()
		time.Sleep(down)

		// By now every leader has passed its stop point: no fleet has a
		// leader until kube-apiserver is back. Poll for the next one from
		// here, so that an agreement before /readyz is timed too.
		pollCtx, stopPolling := context.WithCancel(t.Context())
		agreedC := make(chan agreementResult, 1)
		go func() {
			a, err := waitAgreement(pollCtx, fleets)
			agreedC <- agreementResult{a, err}
		}()

		// Mid-outage: every replica answers HTTP.
		checkDuringOutage(t, plainF, execF, restartedBefore)

		if err := cp.StartAPIServer(ctx(t)); err != nil {
			stopPolling()
			testwait.Recv(t, agreedC, "the agreement poll to stop")
			t.Fatalf("restart %d: %v", i, err)
		}
		apiDown = false
		ready := time.Now()

		var res agreementResult
		select {
		case res = <-agreedC:
		case <-time.After(time.Until(ready.Add(agreeGuard))):
			stopPolling()
			res = testwait.Recv(t, agreedC, "the agreement poll to stop")
		}
		stopPolling()
		if res.err != nil {
			t.Fatalf("restart %d: no agreement within %s of /readyz: %v", i, agreeGuard, res.err)
		}
		got := res.agreed
		pr := probe.end(ready)
		probeReadiness(t, fleets)

		// Exits: none without a command; in exec mode, only the leader
		// before the outage, with ExitLost.
		for _, e := range plainF.takeExits() {
			t.Fatalf("restart %d: plain %s exited with %d; no sidecar without a command may exit:\n%s", i, e.pod, e.code, e.output)
		}
		exits := execF.takeExits()
		for _, e := range exits {
			if e.pod != prevExec.leader || e.code != exitLost || !strings.Contains(e.output, `msg="Leadership lost; command stopped"`) {
				t.Fatalf("restart %d: exec %s exited with %d (leader before the outage: %s); only that leader may exit, with %d after \"Leadership lost; command stopped\":\n%s",
					i, e.pod, e.code, prevExec.leader, exitLost, e.output)
			}
		}
		if len(exits) > 1 {
			t.Fatalf("restart %d: exec fleet: %d exits, want at most 1", i, len(exits))
		}
		execExits += len(exits)

		// Denials the sidecars logged. (The library logs one at most once
		// a minute per replica, so later outages may go unlogged.)
		var logged []string
		for _, f := range fleets {
			for _, r := range f.processes() {
				for _, l := range strings.Split(r.Output()[logOffsets[r]:], "\n") {
					if deniedRE.MatchString(l) {
						logged = append(logged, fmt.Sprintf("%s %s: %s", f.label, r.Name, l))
					}
				}
			}
		}
		if pr.denials > 0 {
			deniedProbe++
		}
		if len(logged) > 0 {
			deniedLogs++
		}

		t.Logf("restart %d: kube-apiserver stopped in %s, down %s more, ready %s after the start; probe: %s",
			i, ms(stopped.Sub(t0)), ms(down), ms(ready.Sub(stopped)-down), pr)
		for j, f := range fleets {
			t.Logf("  %s fleet: leader %s (token %d) %s, all %d replicas agree %s after /readyz",
				f.label, got[j].leader, got[j].token, ms(got[j].elected.Sub(ready)), len(f.replicas()), ms(got[j].at.Sub(ready)))
			agreeTimes[j] = append(agreeTimes[j], got[j].at.Sub(ready))
			electTimes[j] = append(electTimes[j], got[j].elected.Sub(ready))
		}
		for j, f := range fleets {
			// Every outage outlasts the stop point: each election after
			// one is a new tenure, with a higher fencing token.
			if got[j].token <= prev[j].token {
				t.Errorf("restart %d: %s fleet: token %d after the outage, want above %d", i, f.label, got[j].token, prev[j].token)
			}
		}
		t.Logf("  exec exits: %d; sidecar log lines about a denial: %d", len(exits), len(logged))
		for _, l := range logged {
			t.Logf("    %s", l)
		}
		prevExec, prev = got[0], got
	}

	// No two commands ever ran at once.
	data, err := os.ReadFile(execF.lockLog)
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, l := range parseLockLog(t, data) {
		switch l.what {
		case "start":
			starts++
		case "stop":
		default:
			t.Errorf("two commands ran at once: %s", l.line)
		}
	}
	if starts < restarts+1 {
		t.Errorf("%d commands started, want at least %d (one per outage and the first)", starts, restarts+1)
	}

	for j, f := range fleets {
		t.Logf("%s fleet, after /readyz: one leader %v (max %s); all agree %v (max %s); target lease + 3s = %s",
			f.label, msList(electTimes[j]), ms(slices.Max(electTimes[j])),
			msList(agreeTimes[j]), ms(slices.Max(agreeTimes[j])), ms(restartTTL+3*time.Second))
	}
	t.Logf("%d restarts in %s; exec fleet: %d exits (each ExitLost by the leader, restarted), %d commands, 0 overlaps; plain fleet: 0 exits",
		restarts, ms(time.Since(start)), execExits, starts)
	t.Logf("denial window after a restart: the probe got 403/401 in %d of %d outages; sidecars logged a denial in %d",
		deniedProbe, restarts, deniedLogs)
}

// exitLost is elector's exit code when a leader in exec mode lost the
// Lease and stopped its command (elector -h).
const exitLost = 6

// checkDuringOutage checks, while kube-apiserver is down, that every
// replica answers HTTP: those that read the Lease before are ready and
// healthy; an exec replica restarted during the outage (processes from
// index restartedBefore on) waits for the API server, not ready, with no
// leader.
func checkDuringOutage(t *testing.T, plain, exec *fleet, restartedBefore int) {
	t.Helper()
	c := ctx(t)
	for _, r := range plain.replicas() {
		for _, path := range []string{"/readyz", "/healthz", "/"} {
			resp, err := r.Get(c, path)
			if err != nil || resp.Status != http.StatusOK {
				t.Fatalf("plain %s: GET %s during the outage: %v %d %s, want 200", r.Name, path, err, resp.Status, resp.Body)
			}
		}
	}
	restarted := map[*sidecar.Replica]bool{}
	for _, r := range exec.processes()[restartedBefore:] {
		restarted[r] = true
	}
	for _, r := range exec.replicas() {
		select {
		case <-r.Done():
			continue // exited, about to be restarted
		default:
		}
		resp, err := r.Get(c, "/readyz")
		if err != nil {
			t.Fatalf("exec %s: GET /readyz during the outage: %v", r.Name, err)
		}
		if !restarted[r] {
			if resp.Status != http.StatusOK {
				t.Fatalf("exec %s: GET /readyz during the outage = %d %s, want 200 (it read the Lease before)", r.Name, resp.Status, resp.Body)
			}
			continue
		}
		if resp.Status != http.StatusServiceUnavailable || !strings.Contains(string(resp.Body), "lease not read yet") {
			t.Fatalf("exec %s (restarted during the outage): GET /readyz = %d %s, want 503 lease not read yet", r.Name, resp.Status, resp.Body)
		}
		if name, err := r.LeaderName(c); err != nil || name != "" {
			t.Fatalf("exec %s (restarted during the outage): GET / names %q (%v), want \"\"", r.Name, name, err)
		}
		t.Logf("exec %s, restarted during the outage, waits: /readyz %d %s", r.Name, resp.Status, strings.TrimSpace(string(resp.Body)))
	}
}

// probeReadiness asks every replica for /readyz, as the kubelet's
// readiness probe does periodically: each has read the Lease, so each must
// be ready. (elector latches readiness when /readyz first finds the Lease
// read; see TestReadyzStaysReadyOnceLeaseRead.)
func probeReadiness(t *testing.T, fleets []*fleet) {
	t.Helper()
	c := ctx(t)
	for _, f := range fleets {
		for _, r := range f.replicas() {
			resp, err := r.Get(c, "/readyz")
			if err != nil || resp.Status != http.StatusOK {
				t.Fatalf("%s %s: GET /readyz after agreement: %v %d %s, want 200", f.label, r.Name, err, resp.Status, resp.Body)
			}
		}
	}
}

// agreed is when a fleet agreed on one leader.
type agreed struct {
	leader  string
	token   int64
	elected time.Time // first poll with exactly one leader (running its command)
	at      time.Time // first poll where every replica agreed on it
}

type agreementResult struct {
	agreed []agreed
	err    error
}

// waitAgreement polls every fleet until each agrees on one leader (and in
// exec mode that leader's command has started), and returns when each did.
// It returns an error when ctx ends first, or when two commands ran at
// once.
func waitAgreement(ctx context.Context, fleets []*fleet) ([]agreed, error) {
	out := make([]agreed, len(fleets))
	done := make([]bool, len(fleets))
	last := make([]agreement, len(fleets))
	for {
		all := true
		for j, f := range fleets {
			if done[j] {
				continue
			}
			a := f.poll(ctx)
			now := time.Now()
			last[j] = a
			ok := a.leaders == 1
			if ok && f.lockLog != "" {
				started, violations := f.commandRuns(a.token)
				if len(violations) > 0 {
					return nil, fmt.Errorf("two commands ran at once: %v", violations)
				}
				ok = started
			}
			if ok && out[j].elected.IsZero() {
				out[j].elected = now
			}
			if ok && a.ok {
				done[j] = true
				out[j].leader, out[j].token, out[j].at = a.leader, a.token, now
				continue
			}
			all = false
		}
		if all {
			return out, nil
		}
		select {
		case <-ctx.Done():
			var msg strings.Builder
			for j, f := range fleets {
				if !done[j] {
					fmt.Fprintf(&msg, "\n%s fleet:\n  %s", f.label, strings.Join(last[j].views, "\n  "))
				}
			}
			return nil, fmt.Errorf("no agreement on one leader:%s", msg.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func msList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ms(d)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// denialProbe reads the Lease with the sidecars' ServiceAccount token
// every 50ms between begin and end, recording the answers.
type denialProbe struct {
	client *http.Client
	url    string

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers []probeAnswer
}

type probeAnswer struct {
	at     time.Time
	status int // 0: no answer
}

func newDenialProbe(t *testing.T, n *sidecar.Namespace, lease string) (*denialProbe, error) {
	cfg, err := cp.ServiceAccountConfig(ctx(t), n.Name, n.ServiceAccount)
	if err != nil {
		return nil, err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &denialProbe{
		client: client,
		url:    cfg.Host + "/apis/coordination.k8s.io/v1/namespaces/" + n.Name + "/leases/" + lease,
	}, nil
}

func (p *denialProbe) begin() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.mu.Lock()
	p.answers = nil
	p.mu.Unlock()
	p.wg.Go(func() {
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			status := 0
			if req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.url, nil); err == nil {
				if resp, err := p.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
			}
			rcancel()
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.answers = append(p.answers, probeAnswer{time.Now(), status})
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// probeResult summarizes one outage as the probe saw it; times are
// relative to kube-apiserver's /readyz.
type probeResult struct {
	lastAnswer  time.Duration // last answer before the outage
	firstAnswer time.Duration // first answer after it
	first200    time.Duration
	denials     int // 403 and 401 answers after the outage
	deniedFrom  time.Duration
	deniedTo    time.Duration
	statuses    map[int]int // answers after the outage
}

func (r probeResult) String() string {
	s := fmt.Sprintf("no answer for %s, answers again %s and 200 %s after /readyz %v",
		ms(r.firstAnswer-r.lastAnswer), ms(r.firstAnswer), ms(r.first200), r.statuses)
	if r.denials > 0 {
		s += fmt.Sprintf(", %d denied from %s to %s after /readyz", r.denials, ms(r.deniedFrom), ms(r.deniedTo))
	}
	return s
}

// end stops the probe and summarizes its answers relative to ready.
func (p *denialProbe) end(ready time.Time) probeResult {
	p.cancel()
	p.wg.Wait()
	p.client.CloseIdleConnections()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := probeResult{statuses: map[int]int{}}
	outage, back, ok200 := false, false, false
	for _, a := range p.answers {
		rel := a.at.Sub(ready)
		switch {
		case a.status == 0:
			outage = true
			continue
		case !outage:
			r.lastAnswer = rel
			continue
		case !back:
			back, r.firstAnswer = true, rel
		}
		r.statuses[a.status]++
		switch a.status {
		case http.StatusForbidden, http.StatusUnauthorized:
			if r.denials == 0 {
				r.deniedFrom = rel
			}
			r.denials++
			r.deniedTo = rel
		case http.StatusOK:
			if !ok200 {
				ok200, r.first200 = true, rel
			}
		}
	}
	return r
}

func (p *denialProbe) close() {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	p.client.CloseIdleConnections()
}
