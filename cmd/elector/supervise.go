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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
)

// Environment variables set for the command.
const (
	envToken    = "ELECTOR_TOKEN"    // fencing token of this tenure
	envIdentity = "ELECTOR_IDENTITY" // this replica's identity
	envLease    = "ELECTOR_LEASE"    // namespace/name of the Lease
)

// exitCodeError reports that the command exited by itself with a non-zero
// code; elector exits with the same code.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("command exited with code %d", e.code) }

// supervisor runs the command for one tenure through the watchdog (see
// watchdog.go): it starts `elector __watchdog -- COMMAND`, feeds it
// heartbeats of the time left until the elector's Deadline(), and when
// leadership ends sends it SIGTERM (forwarded to the command's process
// group) and, after grace, closes the pipe (the watchdog SIGKILLs the
// group).
type supervisor struct {
	command   []string
	self      string // this binary, re-executed as the watchdog
	logFormat string
	lease     string // namespace/name
	grace     time.Duration
	heartbeat time.Duration
	// deadline is the elector's Deadline: by when the command must be dead
	// unless a renewal succeeds first.
	deadline func() (time.Time, bool)
	clock    clock.WithTicker
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
	// env is added to the command's environment (ELECTOR_SHARD in the
	// sharded mode).
	env []string
}

// run runs the command until it exits or ctx ends. It returns nil when the
// command exited with 0 or was stopped because ctx ended, and
// *exitCodeError when it exited by itself with another code.
func (s *supervisor) run(ctx context.Context, term elector.Term) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("unable to create watchdog pipe: %w", err)
	}
	defer pw.Close()

	args := append([]string{watchdogCommand, "--log-format=" + s.logFormat, "--"}, s.command...)
	cmd := exec.Command(s.self, args...)
	cmd.Stdin = pr
	cmd.Stdout = s.stdout
	cmd.Stderr = s.stderr
	cmd.Env = append(os.Environ(),
		envToken+"="+strconv.FormatInt(int64(term.Token), 10),
		envIdentity+"="+term.Identity,
		envLease+"="+s.lease,
	)
	cmd.Env = append(cmd.Env, s.env...)
	// Its own process group: a terminal's ^C reaches the elector only,
	// which stops the command in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pr.Close()
	if err != nil {
		return fmt.Errorf("unable to start watchdog %s: %w", s.self, err)
	}
	// The watchdog starts the command only after a first heartbeat. It is
	// written after Start, so that it waits in the pipe no longer than the
	// watchdog's own start-up.
	if err := s.beat(pw); err != nil {
		s.log.Warn("Unable to write first heartbeat; the command will not start", "error", err)
	}
	s.log.Info("Starting command", "command", s.command, "token", term.Token, "watchdogPID", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	tick := s.clock.NewTicker(s.heartbeat)
	defer tick.Stop()
	var (
		grace    clock.Timer
		stopping bool
		ctxDone  = ctx.Done()
	)
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	graceC := func() <-chan time.Time {
		if grace == nil {
			return nil
		}
		return grace.C()
	}
	for {
		select {
		case err := <-exited:
			code := exitStatus(cmd.ProcessState, err)
			if stopping {
				s.log.Info("Command stopped", "code", code)
				return nil
			}
			s.log.Info("Command exited", "code", code)
			if code == 0 {
				return nil
			}
			return &exitCodeError{code: code}
		case <-tick.C():
			if err := s.beat(pw); err != nil && !errors.Is(err, errNotLeading) {
				s.log.Debug("Unable to write heartbeat", "error", err)
			}
		case <-ctxDone:
			ctxDone = nil
			stopping = true
			s.log.Info("Stopping command", "reason", context.Cause(ctx), "grace", s.grace.String())
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				s.log.Debug("Unable to signal watchdog", "error", err)
			}
			grace = s.clock.NewTimer(s.grace)
		case <-graceC():
			grace = nil
			s.log.Warn("Command did not stop within grace; killing it", "grace", s.grace.String())
			pw.Close() // EOF: the watchdog SIGKILLs the command's group
		}
	}
}

var errNotLeading = errors.New("not leading")

// beat writes the time left until the deadline. It never blocks for long:
// a watchdog that does not read is not worth waiting for.
func (s *supervisor) beat(pw *os.File) error {
	d, ok := s.deadline()
	if !ok {
		// Leadership ended: send nothing, so the watchdog keeps the last
		// deadline, which is the real one.
		return errNotLeading
	}
	_ = pw.SetWriteDeadline(time.Now().Add(s.heartbeat))
	_, err := io.WriteString(pw, formatBeat(d.Sub(s.clock.Now())))
	return err
}

// exitStatus is the shell's exit code of a finished process.
func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		if err != nil {
			return ExitFailure
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return waitCode(ws)
	}
	return ps.ExitCode()
}
