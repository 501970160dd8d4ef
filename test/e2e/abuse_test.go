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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// Attack parameters. Every attempt keeps its socket open until the attack
// ends, so up to attempts client sockets are open at once (the sidecar
// closes its side of most of them); with fewer file descriptors allowed,
// the oldest are closed to stay fdReserve below the limit.
const (
	fdReserve       = 2000 // file descriptors left for everything else
	attempts        = 10000
	attackers       = 64                    // dialling at once
	maxRSS          = 32 << 20              // the sidecar's memory bound under attack
	probeEvery      = 50 * time.Millisecond // kubelet probes every 10s; this is denser
	probeTimeout    = 5 * time.Second       // failure deadline, not a latency bound
	attackIOTimeout = 10 * time.Second
)

// attackerIP is where the attack comes from: another address than the
// probes', as in a cluster, where the kubelet probes from its node's
// address and an attacking Pod connects from its own.
var attackerIP = net.IPv4(127, 0, 0, 2)

// attack is one kind of abusive client.
type attack int

const (
	silent    attack = iota // connects, sends nothing
	partial                 // sends half a request header, then nothing
	keepAlive               // GET /, reads the answer, stays connected
	slowWatch               // GET /watch, never reads
	stream                  // GET /watch, reads the stream
	kinds
)

var attackNames = [kinds]string{"silent", "partial header", "idle keep-alive", "/watch, never read", "/watch, read"}

// mix is how many attempts of each kind per 100.
var mix = [kinds]int{silent: 38, partial: 7, keepAlive: 40, slowWatch: 10, stream: 5}

// TestHTTPUnderAbuse attacks the leader's HTTP port with attempts
// connections of several kinds from attackerIP, dialled attackers at a
// time and held open until the attack ends, while GET / is probed from
// another address every probeEvery. The sidecar, built without -race as
// shipped, must stay under maxRSS (read from /proc, sampled and as the
// kernel's high-water mark), answer every probe, and keep leading. Probe
// latency (the target is 200ms) is logged, not asserted.
func TestHTTPUnderAbuse(t *testing.T) {
	bin := buildShipped(t)
	m := render(t, "base")
	n := setup(t, m)
	args := baseArgs(t, m)
	a := startBinary(t, bin, n, "abuse-a", args...)
	events := watch(t, a)
	led, err := sidecar.WaitUntilLeads(ctx(t), events)
	if err != nil {
		t.Fatal(err)
	}
	b := startBinary(t, bin, n, "abuse-b", args...)
	agree(t, a.Name, a, b)
	addr, err := a.Addr(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	before := procStatus(t, a.PID())
	t.Logf("before: VmRSS %s, VmHWM %s", mib(before["VmRSS"]), mib(before["VmHWM"]))

	attackCtx, stopAttack := context.WithCancel(context.Background())
	defer stopAttack()
	var wg sync.WaitGroup

	// Sample the leader's RSS.
	var peakRSS atomic.Int64
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, ok := readRSS(a.PID()); ok && rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-attackCtx.Done():
				return
			case <-tick.C:
			}
		}
	})

	// Probe GET / as the kubelet does: a new connection each time.
	type probeResult struct {
		n, failed int
		max       time.Duration
		firstErr  string
	}
	probes := make(chan probeResult, 1)
	go func() {
		var r probeResult
		client := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
		want := `{"name":"` + a.Name + `"}`
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			start := time.Now()
			resp, err := client.Get("http://" + addr + "/")
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			d := time.Since(start)
			r.n++
			r.max = max(r.max, d)
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != want {
				r.failed++
				if r.firstErr == "" {
					r.firstErr = fmt.Sprintf("GET / after %s: %v %q", ms(d), err, body)
				}
			}
			select {
			case <-attackCtx.Done():
				probes <- r
				return
			case <-tick.C:
			}
		}
	}()

	// The attack.
	var (
		held     = make(chan net.Conn, holdable(t))
		outcomes [kinds]map[string]int
		outMu    sync.Mutex
		next     atomic.Int64
	)
	for k := range outcomes {
		outcomes[k] = map[string]int{}
	}
	count := func(k attack, outcome string) {
		outMu.Lock()
		outcomes[k][outcome]++
		outMu.Unlock()
	}
	started := time.Now()
	var dialers sync.WaitGroup
	for range attackers {
		dialers.Go(func() {
			d := net.Dialer{Timeout: attackIOTimeout, LocalAddr: &net.TCPAddr{IP: attackerIP}}
			for {
				i := int(next.Add(1)) - 1
				if i >= attempts {
					return
				}
				k := kindOf(i)
				c, err := d.Dial("tcp", addr)
				if err != nil {
					count(k, "dial failed")
					continue
				}
				hold(held, c)
				switch k {
				case silent:
					count(k, "connected")
				case partial:
					_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: elector\r\nX-Slow: ")
					count(k, errOutcome(err, "sent"))
				case keepAlive:
					count(k, request(c, "/", false))
				case slowWatch:
					_, err := io.WriteString(c, "GET /watch HTTP/1.1\r\nHost: elector\r\n\r\n")
					count(k, errOutcome(err, "sent"))
				case stream:
					wg.Go(func() { count(k, request(c, "/watch", true)) })
				}
			}
		})
	}
	dialers.Wait()
	attackTook := time.Since(started)
	time.Sleep(20 * probeEvery) // probes while everything is held
	after := procStatus(t, a.PID())
	stopAttack()
	r := testwait.Recv(t, probes, "the probes to end")
	close(held)
	for c := range held {
		c.Close() // ends the streams too
	}
	wg.Wait()

	t.Logf("attack: %d connection attempts in %s, %d dialling at once, up to %d held open", attempts, ms(attackTook), attackers, cap(held))
	for k := range kinds {
		t.Logf("  %-20s %v", attackNames[k], outcomes[k])
	}
	t.Logf("RSS: before %s; during the attack peak %s sampled, VmHWM %s (limit %s)",
		mib(before["VmRSS"]), mib(peakRSS.Load()), mib(after["VmHWM"]), mib(maxRSS))
	t.Logf("GET / probes: %d, failed %d, slowest %s", r.n, r.failed, ms(r.max))
	if peak := max(peakRSS.Load(), after["VmHWM"]); peak >= maxRSS {
		t.Errorf("RSS reached %s under attack, want < %s", mib(peak), mib(maxRSS))
	}
	if r.failed > 0 || r.n == 0 {
		t.Errorf("%d of %d GET / probes failed; first: %s", r.failed, r.n, r.firstErr)
	}

	// The leader kept leading: same tenure, and the follower agrees.
	l, err := a.Leader(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !l.IsLeader || l.Token != led.Token {
		t.Errorf("%s after the attack: isLeader %t token %d, want the tenure of token %d", a.Name, l.IsLeader, l.Token, led.Token)
	}
	agree(t, a.Name, a, b)
	for _, reason := range []string{"watchers", "connections"} {
		v := refusedMetric(t, a, reason)
		t.Logf("elector_http_refused_total{reason=%q} %v", reason, v)
		if v == 0 {
			t.Errorf("elector_http_refused_total{reason=%q} = 0, want refusals counted", reason)
		}
	}
}

// holdable is how many attack connections this process can hold open.
func holdable(t *testing.T) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	n := min(attempts, int(min(rl.Cur, 1<<30))-fdReserve)
	if n < attempts/10 {
		t.Skipf("ulimit -n %d is too low to hold %d connections", rl.Cur, attempts/10)
	}
	return n
}

// hold keeps c open until the attack ends; when held is full, the oldest
// held connection is closed.
func hold(held chan net.Conn, c net.Conn) {
	for {
		select {
		case held <- c:
			return
		default:
		}
		select {
		case old := <-held:
			old.Close()
		default:
		}
	}
}

// kindOf spreads the kinds of mix over the attempts.
func kindOf(i int) attack {
	j := (i * 37) % 100 // a permutation of 0..99: kinds interleave
	for k, n := range mix {
		if j < n {
			return attack(k)
		}
		j -= n
	}
	return silent
}

// request sends GET path on c and reads the answer: the whole body, or
// with stream only up to the first event, then the rest until c closes.
func request(c net.Conn, path string, stream bool) string {
	_ = c.SetDeadline(time.Now().Add(attackIOTimeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: elector\r\n\r\n"); err != nil {
		return errOutcome(err, "")
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return errOutcome(err, "")
	}
	defer resp.Body.Close()
	outcome := strconv.Itoa(resp.StatusCode)
	if !stream || resp.StatusCode != http.StatusOK {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return errOutcome(err, "")
		}
		return outcome
	}
	_ = c.SetDeadline(time.Time{})
	_, _ = io.Copy(io.Discard, resp.Body) // until the attack ends
	return outcome
}

func errOutcome(err error, ok string) string {
	var ne net.Error
	switch {
	case err == nil:
		return ok
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "reset"):
		return "reset"
	default:
		return "closed"
	}
}

// buildShipped builds cmd/elector as it ships: without -race, whatever
// the tests have, so that its memory is the real one.
func buildShipped(t *testing.T) string {
	t.Helper()
	root, err := sidecar.RepoDir()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "elector")
	cmd := exec.CommandContext(ctx(t), "go", "build", "-o", out, "./cmd/elector")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/elector: %v\n%s", err, b)
	}
	return out
}

// startBinary is start with another binary.
func startBinary(t *testing.T, bin string, n *sidecar.Namespace, pod string, args ...string) *sidecar.Replica {
	t.Helper()
	r, err := sidecar.Start(sidecar.Options{
		Binary: bin, Kubeconfig: n.Kubeconfig,
		PodName: pod, PodNamespace: n.Name,
		Args: args, Log: t.Output(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// procStatus returns the kB fields of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]int64{}
	for line := range bytes.Lines(b) {
		name, value, ok := strings.Cut(string(line), ":")
		v, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil && unit == "kB" {
			fields[name] = n << 10
		}
	}
	return fields
}

func readRSS(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(string(b), "VmRSS:")
	if !ok {
		return 0, false
	}
	v, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	n, err := strconv.ParseInt(v, 10, 64)
	return n << 10, err == nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

var refusedRE = regexp.MustCompile(`(?m)^elector_http_refused_total\{reason="([a-z]+)"\} (\S+)$`)

// refusedMetric reads elector_http_refused_total{reason} from /metrics.
func refusedMetric(t *testing.T, r *sidecar.Replica, reason string) float64 {
	t.Helper()
	resp, err := r.Get(ctx(t), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range refusedRE.FindAllSubmatch(resp.Body, -1) {
		if string(m[1]) == reason {
			v, _ := strconv.ParseFloat(string(m[2]), 64)
			return v
		}
	}
	t.Fatalf("%s: /metrics has no elector_http_refused_total{reason=%q}", r.Name, reason)
	return 0
}
