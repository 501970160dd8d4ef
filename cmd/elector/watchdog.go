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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/utils/clock"
)

// The watchdog: why and how.
//
// In exec mode the command may run only while this replica leads, i.e.
// until the elector's Deadline() (last successful renewal + renew
// deadline). The elector's own goroutines stop the command in time, but
// only while the elector runs: if the elector process is frozen (SIGSTOP,
// a stalled cgroup, a debugger) for longer than the lease, another replica
// takes over while the command still runs. consul lock has exactly this
// double-run (hashicorp/consul #9788).
//
// So the command is started by a tiny second process, the watchdog: the
// elector binary re-executed as `elector __watchdog -- COMMAND ARGS...`
// in its own process group. Its stdin is a pipe from the elector, which
// writes the time remaining until Deadline(), in whole milliseconds
// rounded down ("4873\n"), every heartbeat interval (ttl/40, a quarter of
// the retry period), so that each renewal is passed on within that
// interval. The watchdog keeps its own deadline on its own monotonic
// clock: time of receipt + remaining. Relative durations need no shared
// clock. The receipt is after the send, so the watchdog's deadline trails
// the elector's by the pipe latency (microseconds unless the host is
// starved); that is covered by the lease duration − renew deadline margin
// (2ttl/5), the time between the renew deadline and the earliest takeover.
//
// The watchdog SIGKILLs the command's process group when
//   - its deadline passes without a newer heartbeat (the elector is frozen
//     or its renewals failed and it stopped sending), or
//   - the pipe reaches EOF: the elector died, or closed it on purpose to
//     kill the command after --grace, or
//   - a line is malformed.
//
// It forwards SIGTERM and SIGINT to the command's process group (the
// elector sends SIGTERM when leadership ends), starts the command only
// after a first heartbeat, and exits with the command's exit code (128+N
// when killed by signal N), or ExitLost when it had to enforce a deadline.
// It is a child subreaper, so orphans of the command are reaped by it, not
// left as zombies under the elector when the elector is PID 1. On Linux
// the command also gets SIGKILL from the kernel if the watchdog itself
// dies (PR_SET_PDEATHSIG), so the command never outlives its supervision.
//
// A frozen watchdog, or a frozen host, cannot be helped by any timeout:
// use the fencing token (ELECTOR_TOKEN) where writes must be safe.

// watchdogCommand is the hidden subcommand that runs the watchdog.
const watchdogCommand = "__watchdog"

// exitCannotRun is the shell's exit code for a command that cannot be run.
const exitCannotRun = 127

// beat is one heartbeat: the time left until the elector's deadline, and
// when the watchdog received it, on the watchdog's clock.
type beat struct {
	remaining time.Duration
	at        time.Time
}

// formatBeat renders a heartbeat line, rounding down to milliseconds so
// the watchdog never gets more time than the elector has.
func formatBeat(remaining time.Duration) string {
	ms := remaining.Milliseconds()
	if remaining < 0 && remaining%time.Millisecond != 0 {
		ms--
	}
	return strconv.FormatInt(ms, 10) + "\n"
}

func parseBeat(line string) (time.Duration, error) {
	ms, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed heartbeat %q", line)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// readBeats reads heartbeats from r, stamping each with its time of
// receipt. The channel is closed at EOF, on a read error or on a
// malformed line.
func readBeats(r io.Reader, clk clock.PassiveClock, log *slog.Logger) <-chan beat {
	ch := make(chan beat)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			at := clk.Now()
			d, err := parseBeat(sc.Text())
			if err != nil {
				log.Error("Malformed heartbeat", "error", err)
				return
			}
			ch <- beat{remaining: d, at: at}
		}
	}()
	return ch
}

// watchdog enforces the heartbeat deadline on the command's process group.
type watchdog struct {
	clock clock.Clock
	// signal sends sig to the command's process group.
	signal func(sig syscall.Signal) error
	log    *slog.Logger
}

// supervise runs until the command has exited and returns the watchdog's
// exit code. beats is closed at EOF; exited delivers the command's exit
// code.
func (w *watchdog) supervise(first beat, beats <-chan beat, sigs <-chan os.Signal, exited <-chan int) int {
	var (
		timer    clock.Timer
		enforced string
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer = nil
		}
	}
	defer stopTimer()
	enforce := func(reason string) {
		stopTimer()
		if enforced != "" {
			return
		}
		enforced = reason
		w.log.Warn("Killing command", "reason", reason)
		if err := w.signal(syscall.SIGKILL); err != nil {
			w.log.Error("Unable to kill command", "error", err)
		}
	}
	arm := func(b beat) {
		stopTimer()
		if enforced != "" {
			return
		}
		left := b.at.Add(b.remaining).Sub(w.clock.Now())
		if left <= 0 {
			enforce("heartbeat deadline passed")
			return
		}
		timer = w.clock.NewTimer(left)
	}
	timerC := func() <-chan time.Time {
		if timer == nil {
			return nil
		}
		return timer.C()
	}

	arm(first)
	for {
		select {
		case code := <-exited:
			// Leave nothing of the command's group behind.
			_ = w.signal(syscall.SIGKILL)
			if enforced != "" {
				return ExitLost
			}
			return code
		case b, ok := <-beats:
			if !ok {
				beats = nil
				enforce("heartbeat pipe closed")
				continue
			}
			arm(b)
		case <-timerC():
			timer = nil
			enforce("heartbeat deadline passed")
		case sig := <-sigs:
			s, ok := sig.(syscall.Signal)
			if !ok {
				continue
			}
			w.log.Info("Forwarding signal to command", "signal", s.String())
			if err := w.signal(s); err != nil {
				w.log.Warn("Unable to signal command", "error", err)
			}
		}
	}
}

// watchdogMain is `elector __watchdog [--log-format=F] -- COMMAND [ARGS...]`.
func watchdogMain(args []string, stdin io.Reader, stdout, stderr *os.File) int {
	format := "text"
	for len(args) > 0 && args[0] != "--" {
		if f, ok := strings.CutPrefix(args[0], "--log-format="); ok {
			format = f
		}
		args = args[1:]
	}
	log := newLogger(stderr, format, slog.LevelInfo).With("process", "watchdog")
	if len(args) < 2 {
		log.Error("Usage: elector __watchdog [--log-format=F] -- COMMAND [ARGS...]")
		return ExitUsage
	}
	argv := args[1:]

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	clk := clock.RealClock{}
	beats := readBeats(stdin, clk, log)
	first, ok := <-beats
	switch {
	case !ok:
		log.Error("No heartbeat from elector; not starting command")
		return ExitLost
	case first.remaining <= 0:
		log.Error("Deadline already passed; not starting command", "remaining", first.remaining)
		return ExitLost
	}
	select {
	case <-sigs:
		log.Info("Stopped before the command started")
		return ExitOK
	default:
	}

	setSubreaper(log)
	pid, err := startCommand(argv, stdout, stderr)
	if err != nil {
		log.Error("Unable to start command", "command", argv, "error", err)
		return exitCannotRun
	}
	log.Info("Started command", "pid", pid, "command", argv)
	w := &watchdog{
		clock:  clk,
		signal: func(s syscall.Signal) error { return ignoreESRCH(syscall.Kill(-pid, s)) },
		log:    log,
	}
	code := w.supervise(first, beats, sigs, reap(pid))
	log.Info("Command exited", "pid", pid, "code", code)
	return code
}

// startCommand starts argv in its own process group with stdin from
// /dev/null and the watchdog's environment (which carries ELECTOR_*).
func startCommand(argv []string, stdout, stderr *os.File) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	p, err := os.StartProcess(path, argv, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{devnull, stdout, stderr},
		Sys:   commandAttr(),
	})
	if err != nil {
		return 0, err
	}
	pid := p.Pid
	_ = p.Release() // reaped by reap, not by os.Process
	return pid, nil
}

// reap waits for any child (orphans adopted as subreaper included) until
// the command itself exits, and delivers its exit code.
func reap(pid int) <-chan int {
	ch := make(chan int, 1)
	go func() {
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, 0, nil)
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				ch <- exitCannotRun // ECHILD: the command is gone without a status
				return
			case got == pid:
				ch <- waitCode(ws)
				return
			}
		}
	}()
	return ch
}

// waitCode is the shell's exit code for a wait status.
func waitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func ignoreESRCH(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
