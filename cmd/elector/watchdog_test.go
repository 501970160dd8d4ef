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

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector/internal/testwait"
)

func TestFormatBeat(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5000\n"},
		{1999 * time.Microsecond, "1\n"}, // rounded down: never more time than the elector has
		{0, "0\n"},
		{-time.Nanosecond, "-1\n"},
		{-2 * time.Millisecond, "-2\n"},
	} {
		if got := formatBeat(tc.d); got != tc.want {
			t.Errorf("formatBeat(%v) = %q, want %q", tc.d, got, tc.want)
		}
		d, err := parseBeat(tc.want)
		if err != nil || d > tc.d {
			t.Errorf("parseBeat(%q) = %v, %v; want at most %v", tc.want, d, err, tc.d)
		}
	}
	if _, err := parseBeat("12ms\n"); err == nil {
		t.Error("parseBeat accepted 12ms")
	}
}

// Heartbeats are stamped with their time of receipt on the watchdog's
// clock; a malformed line ends the stream.
func TestReadBeats(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	pr, pw := io.Pipe()
	defer pr.Close()
	beats := readBeats(pr, fc, slog.New(slog.DiscardHandler))

	go func() { _, _ = io.WriteString(pw, "1500\n") }()
	if b := testwait.Recv(t, beats, "the first beat"); b.remaining != 1500*time.Millisecond || !b.at.Equal(t0) {
		t.Errorf("beat = %+v", b)
	}
	fc.Step(2 * time.Second)
	go func() { _, _ = io.WriteString(pw, "-3\n") }()
	if b := testwait.Recv(t, beats, "the second beat"); b.remaining != -3*time.Millisecond || !b.at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("beat = %+v", b)
	}
	go func() { _, _ = io.WriteString(pw, "soon\n") }()
	if b, ok := testwait.RecvOK(t, beats, "the end of the beats"); ok {
		t.Errorf("malformed line gave %+v", b)
	}
	pw.Close()
}

// group records the signals the watchdog sends to the command's group.
type group chan syscall.Signal

func (g group) signal(s syscall.Signal) error { g <- s; return nil }

func (g group) next(t *testing.T) syscall.Signal {
	t.Helper()
	select {
	case s := <-g:
		return s
	case <-time.After(testwait.Timeout):
		t.Fatal("no signal sent")
		return 0
	}
}

type watchdogFixture struct {
	fc     *clocktesting.FakeClock
	g      group
	beats  chan beat
	sigs   chan os.Signal
	exited chan int
	done   chan int
}

func startWatchdog(t *testing.T, first beat, fc *clocktesting.FakeClock) *watchdogFixture {
	f := &watchdogFixture{
		fc:     fc,
		g:      make(group, 16),
		beats:  make(chan beat),
		sigs:   make(chan os.Signal),
		exited: make(chan int),
		done:   make(chan int, 1),
	}
	w := &watchdog{clock: fc, signal: f.g.signal, log: slog.New(slog.DiscardHandler)}
	go func() { f.done <- w.supervise(first, f.beats, f.sigs, f.exited) }()
	return f
}

// sync makes sure everything sent before was handled: the watchdog
// handles one event at a time, and forwards SIGTERM.
func (f *watchdogFixture) sync(t *testing.T) {
	t.Helper()
	testwait.Send(t, f.sigs, os.Signal(syscall.SIGTERM), "the watchdog to take SIGTERM")
	if s := f.g.next(t); s != syscall.SIGTERM {
		t.Fatalf("signal = %v, want SIGTERM (killed too early?)", s)
	}
}

func (f *watchdogFixture) exit(t *testing.T, code, want int) {
	t.Helper()
	testwait.Send(t, f.exited, code, "the watchdog to take the exit")
	if got := testwait.Recv(t, f.done, "the watchdog to return"); got != want {
		t.Errorf("watchdog exit code = %d, want %d", got, want)
	}
	if s := f.g.next(t); s != syscall.SIGKILL {
		t.Errorf("after exit: %v, want SIGKILL of the group's stragglers", s)
	}
}

// The deadline is receipt time + remaining of the newest heartbeat; when
// it passes the group is killed.
func TestWatchdogDeadline(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	f := startWatchdog(t, beat{remaining: 5 * time.Second, at: t0}, fc)
	fc.Step(time.Second)
	testwait.Send(t, f.beats, beat{remaining: 5 * time.Second, at: fc.Now()}, "the watchdog to take a beat") // deadline t0+6s
	f.sync(t)
	fc.Step(4999 * time.Millisecond) // past the first deadline, before the second
	f.sync(t)
	fc.Step(time.Millisecond)
	if s := f.g.next(t); s != syscall.SIGKILL {
		t.Fatalf("at the deadline: %v, want SIGKILL", s)
	}
	// Heartbeats after the kill change nothing.
	testwait.Send(t, f.beats, beat{remaining: time.Hour, at: fc.Now()}, "the watchdog to take a beat")
	f.exit(t, 137, ExitLost)
}

// A heartbeat that was received a while ago counts from its receipt.
func TestWatchdogDeadlineFromReceipt(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	f := startWatchdog(t, beat{remaining: 5 * time.Second, at: t0.Add(-4 * time.Second)}, fc)
	f.sync(t)
	fc.Step(time.Second)
	if s := f.g.next(t); s != syscall.SIGKILL {
		t.Fatalf("%v, want SIGKILL", s)
	}
	f.exit(t, 137, ExitLost)
}

func TestWatchdogExpiredBeatKillsAtOnce(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	f := startWatchdog(t, beat{remaining: 10 * time.Second, at: t0}, fc)
	testwait.Send(t, f.beats, beat{remaining: 0, at: t0}, "the watchdog to take a beat")
	if s := f.g.next(t); s != syscall.SIGKILL {
		t.Fatalf("%v, want SIGKILL", s)
	}
	f.exit(t, 137, ExitLost)
}

// EOF on the pipe (the elector died, or gave up on --grace) kills at once.
func TestWatchdogEOF(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	f := startWatchdog(t, beat{remaining: time.Hour, at: t0}, fc)
	close(f.beats)
	if s := f.g.next(t); s != syscall.SIGKILL {
		t.Fatalf("%v, want SIGKILL", s)
	}
	f.exit(t, 137, ExitLost)
}

// A command that exits by itself passes its code through.
func TestWatchdogCommandExits(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	f := startWatchdog(t, beat{remaining: time.Hour, at: t0}, fc)
	f.sync(t) // SIGTERM is forwarded, not enforced
	f.exit(t, 3, 3)
}

// The real watchdog process, with a real command.

var pidRE = regexp.MustCompile(`msg="Started command" process=watchdog pid=(\d+)`)

type watchdogProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int // the command's
	logs  chan string
}

// startWatchdogProcess runs this test binary as the watchdog of argv,
// sends the first heartbeat and waits until the command runs.
func startWatchdogProcess(t *testing.T, first string, argv ...string) *watchdogProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{watchdogCommand, "--"}, argv...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // after a failed wait; a no-op once it has exited
	p := &watchdogProcess{cmd: cmd, stdin: stdin, logs: make(chan string, 100)}
	go func() {
		defer close(p.logs)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs <- sc.Text()
		}
	}()
	if _, err := io.WriteString(stdin, first); err != nil {
		t.Fatal(err)
	}
	for {
		line, ok := testwait.RecvOK(t, p.logs, "the watchdog to start the command")
		if !ok {
			break
		}
		if m := pidRE.FindStringSubmatch(line); m != nil {
			p.pid, _ = strconv.Atoi(m[1])
			return p
		}
	}
	t.Fatal("the watchdog did not start the command")
	return nil
}

// wait returns the watchdog's exit code once its logs are drained.
func (p *watchdogProcess) wait(t *testing.T) (int, []string) {
	t.Helper()
	var logs []string
	for {
		line, ok := testwait.RecvOK(t, p.logs, "the watchdog to exit")
		if !ok {
			break
		}
		logs = append(logs, line)
	}
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return p.cmd.ProcessState.ExitCode(), logs
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("command pid %d still exists (kill 0: %v)", pid, err)
	}
}

// The elector dies (its end of the pipe closes): the command is killed.
func TestWatchdogProcessKillsOnEOF(t *testing.T) {
	p := startWatchdogProcess(t, "60000\n", "sleep", "100")
	p.stdin.Close()
	code, logs := p.wait(t)
	if code != ExitLost {
		t.Errorf("exit code = %d, want %d; logs:\n%q", code, ExitLost, logs)
	}
	assertGone(t, p.pid)
}

// The elector is alive but silent (frozen): the command is killed at the
// heartbeat deadline.
func TestWatchdogProcessKillsAtDeadline(t *testing.T) {
	p := startWatchdogProcess(t, "300\n", "sleep", "100")
	code, logs := p.wait(t)
	p.stdin.Close()
	if code != ExitLost {
		t.Errorf("exit code = %d, want %d; logs:\n%q", code, ExitLost, logs)
	}
	assertGone(t, p.pid)
}

// SIGTERM is forwarded; the exit code is the command's (128+15).
func TestWatchdogProcessForwardsSIGTERM(t *testing.T) {
	p := startWatchdogProcess(t, "60000\n", "sleep", "100")
	defer p.stdin.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, logs := p.wait(t)
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code = %d, want 143; logs:\n%q", code, logs)
	}
	assertGone(t, p.pid)
}

// If the watchdog itself dies, the kernel kills the command.
func TestWatchdogProcessDeathKillsCommand(t *testing.T) {
	p := startWatchdogProcess(t, "60000\n", "sleep", "100")
	defer p.stdin.Close()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// The command is killed asynchronously: wait until it is gone or a
	// zombie. (Its stderr is the watchdog's: drain the logs only after.)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	zombie := regexp.MustCompile(`^\d+ \(.*\) Z`)
	for {
		state, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
		if err != nil || zombie.Match(state) {
			break
		}
		select {
		case <-tick.C:
		case <-timeout:
			_ = syscall.Kill(p.pid, syscall.SIGKILL) // clean up after the failure
			t.Fatalf("command %d survives its watchdog: %s", p.pid, state)
		}
	}
	p.wait(t)
}

// Without a first heartbeat the command never starts.
func TestWatchdogProcessNeedsAHeartbeat(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testwait.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], watchdogCommand, "--", "sleep", "100")
	cmd.Stdin = nil // /dev/null: EOF at once
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitLost {
		t.Errorf("watchdog without heartbeat: %v, want exit %d", err, ExitLost)
	}
}
