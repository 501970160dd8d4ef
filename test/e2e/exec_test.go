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
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

// The test binary doubles as the command of exec mode: with
// ELECTOR_E2E_HELPER=lockholder, TestMain runs lockHolder instead of the
// tests.
const (
	envHelper        = "ELECTOR_E2E_HELPER"
	helperLockHolder = "lockholder"
	envLockFile      = "ELECTOR_E2E_LOCK"    // file to flock
	envLockLog       = "ELECTOR_E2E_LOCKLOG" // one line per start, stop or violation
)

// lockHolder is the command exec mode runs while leading. It takes a
// non-blocking exclusive flock on a file shared by all replicas, as long as
// it runs (the kernel drops it when the process dies, however it dies),
// and logs "start TOKEN NANOS" with its $ELECTOR_TOKEN and the time, or
// "violation TOKEN ..." if another command still holds the lock: two
// commands ran at once. On SIGTERM it logs "stop TOKEN NANOS" and exits 0.
// lockHolderCommand returns this test binary as an exec-mode command
// that holds an exclusive flock while it runs (lockHolder), the
// environment that makes it one, and the log where it records every start,
// stop and violation.
func lockHolderCommand(t *testing.T) (self string, env []string, lockLog string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lockLog = filepath.Join(dir, "lock.log")
	env = []string{
		envHelper + "=" + helperLockHolder,
		envLockFile + "=" + filepath.Join(dir, "lock"),
		envLockLog + "=" + lockLog,
	}
	return self, env, lockLog
}

func lockHolder() int {
	token := os.Getenv("ELECTOR_TOKEN")
	lockFile, lockLog := os.Getenv(envLockFile), os.Getenv(envLockLog)
	if s := os.Getenv("ELECTOR_SHARD"); s != "" {
		// The sharded mode: one lock and one log per shard.
		lockFile, lockLog = lockFile+"."+s, lockLog+"."+s
	}
	logf := func(format string, args ...any) {
		f, err := os.OpenFile(lockLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lockholder:", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, format+"\n", args...) // one write: appends do not interleave
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		logf("violation %s unable to open the lock file: %v", token, err)
		return 1
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		logf("violation %s %d started while another command held the lock", token, time.Now().UnixNano())
	case err != nil:
		logf("violation %s unable to lock: %v", token, err)
	default:
		logf("start %s %d", token, time.Now().UnixNano())
	}
	<-sigs
	logf("stop %s %d", token, time.Now().UnixNano())
	return 0
}

// TestExecModeNeverRunsTwoCommands hands leadership over three times by
// SIGTERM among four replicas in exec mode. Each command must start only
// after the previous one has exited, and with a higher $ELECTOR_TOKEN.
func TestExecModeNeverRunsTwoCommands(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	n := setup(t, m)
	self, env, lockLog := lockHolderCommand(t)
	args := append(baseArgs(t, m), "--", self)
	startExec := func(pod string) *sidecar.Replica {
		r, err := sidecar.Start(sidecar.Options{
			Binary: electorBin, Kubeconfig: n.Kubeconfig, PodName: pod, PodNamespace: n.Name,
			Args: args, Env: env, Log: t.Output(),
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

	leader := startExec("replica-0")
	first, err := sidecar.WaitUntilLeads(ctx(t), watch(t, leader))
	if err != nil {
		t.Fatal(err)
	}
	commandStarted(t, lockLog, first.Token)
	var rest []*sidecar.Replica
	for i := 1; i <= 3; i++ {
		rest = append(rest, startExec(fmt.Sprintf("replica-%d", i)))
	}
	agree(t, leader.Name, append(rest, leader)...)

	for handoff := 1; handoff <= 3; handoff++ {
		streams := map[*sidecar.Replica]<-chan sidecar.Leader{}
		for _, r := range rest {
			streams[r] = watch(t, r)
		}
		sent := time.Now()
		if err := leader.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		next, led := firstToLead(t, streams)
		started := commandStarted(t, lockLog, led.Token)
		if code := exitCode(t, leader); code != 0 {
			t.Fatalf("%s exited with %d after SIGTERM, want 0\n%s", leader.Name, code, leader.Output())
		}
		t.Logf("handoff %d: %s -> %s (token %d) %s after SIGTERM; its command started %s after SIGTERM",
			handoff, leader.Name, next.Name, led.Token, ms(led.Seen.Sub(sent)), ms(started.Sub(sent)))
		var others []*sidecar.Replica
		for _, r := range rest {
			if r != next {
				others = append(others, r)
			}
		}
		leader, rest = next, others
	}
	// Stop the last leader too, so that its command logs its stop.
	if err := leader.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, leader); code != 0 {
		t.Fatalf("%s exited with %d after SIGTERM, want 0\n%s", leader.Name, code, leader.Output())
	}

	data, err := os.ReadFile(lockLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commands:\n%s", data)
	var starts, stops []int
	var lastStop time.Time
	for _, l := range parseLockLog(t, data) {
		switch l.what {
		case "start":
			starts = append(starts, l.token)
			if !lastStop.IsZero() {
				t.Logf("command %d started %s after command %d was told to stop", l.token, ms(l.at.Sub(lastStop)), stops[len(stops)-1])
			}
		case "stop":
			stops = append(stops, l.token)
			lastStop = l.at
		default:
			t.Errorf("two commands ran at once: %s", l.line)
		}
	}
	if len(starts) != 4 {
		t.Fatalf("%d commands started, want 4 (one per tenure): %v", len(starts), starts)
	}
	for i := 1; i < len(starts); i++ {
		if starts[i] <= starts[i-1] {
			t.Errorf("ELECTOR_TOKEN %d after %d: tokens must increase", starts[i], starts[i-1])
		}
	}
	if len(stops) != 4 {
		t.Errorf("%d commands stopped on SIGTERM, want 4: %v", len(stops), stops)
	}
}

type lockLine struct {
	what  string // start, stop or violation
	token int
	at    time.Time
	line  string
}

func parseLockLog(t *testing.T, data []byte) []lockLine {
	t.Helper()
	var out []lockLine
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("lock log line %q: want WHAT TOKEN NANOS", line)
		}
		token, err1 := strconv.Atoi(f[1])
		nanos, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("lock log line %q: want WHAT TOKEN NANOS", line)
		}
		out = append(out, lockLine{what: f[0], token: token, at: time.Unix(0, nanos), line: line})
	}
	return out
}

// commandStarted waits until the command of tenure token has logged its
// start (or a violation), and returns when it started.
func commandStarted(t *testing.T, lockLog string, token int64) time.Time {
	t.Helper()
	c := ctx(t)
	for {
		if data, err := os.ReadFile(lockLog); err == nil {
			for _, l := range parseLockLog(t, data) {
				if l.token == int(token) && l.what != "stop" {
					return l.at
				}
			}
		}
		select {
		case <-c.Done():
			t.Fatalf("the command of tenure %d did not start", token)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
