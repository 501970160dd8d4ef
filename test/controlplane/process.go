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

package controlplane

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets to exit after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// process is a control-plane child process that can be stopped and started
// again with the same command line. Its output is appended to a log file and,
// when verbose is set, copied there too.
type process struct {
	name    string
	path    string
	args    []string
	logPath string
	verbose io.Writer // nil unless the output is also copied

	mu  sync.Mutex
	cur *run // the last start, nil if never started
}

// run is one start of a process.
type run struct {
	pid  int
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // the result of Wait, written before done is closed
}

// start starts the process. It must not be running.
//
// The child gets its own process group, so that stop can signal everything it
// might spawn and a terminal's Ctrl-C reaches only the parent, which then
// stops the child in order. PR_SET_PDEATHSIG kills the child if the parent
// dies without stopping it (a crash, SIGKILL, a test timeout). The kernel
// sends that signal when the *thread* that forked the child exits, and the Go
// runtime may retire threads, so the child is started and waited for from a
// goroutine locked to its OS thread for the child's whole life.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		select {
		case <-p.cur.done:
		default:
			return fmt.Errorf("%s is already running (pid %d)", p.name, p.cur.pid)
		}
	}

	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("unable to open the %s log: %w", p.name, err)
	}
	var w io.Writer = logFile
	if p.verbose != nil {
		w = io.MultiWriter(logFile, &prefixWriter{prefix: "[" + p.name + "] ", w: p.verbose})
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	r := &run{done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("unable to start %s: %w", p.name, err)
	}
	r.pid = cmd.Process.Pid
	p.cur = r
	return nil
}

// last returns the last run, or nil if the process was never started.
func (p *process) last() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// exitError describes how the run ended; call it after done is closed.
func (r *run) exitError(name string) error {
	if r.err == nil {
		return fmt.Errorf("%s exited", name)
	}
	return fmt.Errorf("%s exited: %w", name, r.err)
}

// runningPID returns the process ID of the running process, or 0.
func (p *process) runningPID() int {
	r := p.last()
	if r == nil {
		return 0
	}
	select {
	case <-r.done:
		return 0
	default:
		return r.pid
	}
}

// stop sends SIGTERM to the process group, waits up to stopTimeout, then
// sends SIGKILL and waits for the process to be reaped. It is a no-op when the
// process is not running.
//
// kube-apiserver and etcd do not fork, so once the group leader is reaped the
// group is empty; it is not signalled again, as its ID may have been reused.
func (p *process) stop() {
	r := p.last()
	if r == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = syscall.Kill(-r.pid, syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		<-r.done
	}
}

// logTail returns the last n lines of the process log, indented.
func (p *process) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("  (no %s log: %v)\n", p.name, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return indent(lines)
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// prefixWriter writes each complete line to w with a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer

	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer.
func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, b...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(pw.w, "%s%s\n", pw.prefix, pw.buf[:i]); err != nil {
			return len(b), err
		}
		pw.buf = pw.buf[i+1:]
	}
}
