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
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every child process of the benchmark, so that all of them
// are killed at the end, however it ends. Children also get SIGKILL from
// the kernel should the benchmark die first (PR_SET_PDEATHSIG).
type procs struct {
	mu   sync.Mutex
	live map[*proc]struct{}
}

func newProcs() *procs { return &procs{live: map[*proc]struct{}{}} }

// proc is one child process. Its output is scanned line by line: lines
// containing a marker are kept with the time they were read, the last
// lines are kept for error messages.
type proc struct {
	name    string
	started time.Time // just before exec
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error // of Wait, after exited

	mu      sync.Mutex
	markers []string
	hits    []hit
	tail    []string
	onLine  func(time.Time, string)
	changed chan struct{} // closed and replaced on each hit
}

type hit struct {
	at     time.Time
	marker string
	line   string
}

const tailLines = 40

// start runs path with args. markers are substrings of output lines to
// timestamp; onLine, if set, sees every line.
func (ps *procs) start(name, path string, args []string, markers []string, onLine func(time.Time, string)) (*proc, error) {
	p := &proc{name: name, exited: make(chan struct{}), markers: markers, onLine: onLine, changed: make(chan struct{})}
	cmd := exec.Command(path, args...)
	w := &lineWriter{p: p}
	cmd.Stdout, cmd.Stderr = w, w
	// Own process group (a terminal's ^C reaches only the benchmark,
	// which stops the children itself); killed with the benchmark.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("unable to start %s: %w", name, err)
	}
	ps.mu.Lock()
	ps.live[p] = struct{}{}
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// killAll kills every live child and waits for it.
func (ps *procs) killAll() {
	ps.mu.Lock()
	live := make([]*proc, 0, len(ps.live))
	for p := range ps.live {
		live = append(live, p)
	}
	ps.mu.Unlock()
	for _, p := range live {
		p.kill()
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// kill sends SIGKILL and waits until the process has been reaped.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits up to timeout, then kills.
func (p *proc) stop(timeout time.Duration) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, timeout)
	}
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitMarker returns the first line with marker read at or after since.
func (p *proc) waitMarker(ctx context.Context, marker string, since time.Time, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		p.mu.Lock()
		for _, h := range p.hits {
			if h.marker == marker && !h.at.Before(since) {
				p.mu.Unlock()
				return h.at, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			return time.Time{}, p.failure(fmt.Sprintf("exited (%v) before printing %q", p.err, marker))
		case <-ctx.Done():
			return time.Time{}, p.failure(fmt.Sprintf("did not print %q within %v", marker, timeout))
		}
	}
}

// lineWith returns the first line seen with marker, or "".
func (p *proc) lineWith(marker string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hits {
		if h.marker == marker {
			return h.line
		}
	}
	return ""
}

// failure is an error naming the process, with its last output lines.
func (p *proc) failure(what string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Errorf("%s %s; last output:\n\t%s", p.name, what, strings.Join(p.tail, "\n\t"))
}

func (p *proc) line(at time.Time, s string) {
	if p.onLine != nil {
		p.onLine(at, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == tailLines {
		p.tail = p.tail[1:]
	}
	p.tail = append(p.tail, s)
	for _, m := range p.markers {
		if strings.Contains(s, m) {
			p.hits = append(p.hits, hit{at: at, marker: m, line: s})
			close(p.changed)
			p.changed = make(chan struct{})
		}
	}
}

// lineWriter splits a child's output into lines, timestamped when read.
type lineWriter struct {
	p   *proc
	buf []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	at := time.Now()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.p.line(at, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// memory is a process's resident set from /proc/<pid>/status, in bytes.
type memory struct {
	rss  int64 // VmRSS
	anon int64 // RssAnon: heap, stacks, runtime structures
	file int64 // RssFile: pages of the executable (and other files) in memory
}

// procStat reads a process's resident set and CPU time (utime + stime)
// from /proc.
func procStat(pid int) (mem memory, cpu time.Duration, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem, 0, err
	}
	if mem, err = parseStatus(string(status)); err != nil {
		return mem, 0, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return mem, 0, err
	}
	cpu, err = parseStatCPU(string(stat))
	return mem, cpu, err
}

// parseStatus reads VmRSS, RssAnon and RssFile from /proc/<pid>/status.
func parseStatus(status string) (memory, error) {
	var m memory
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for _, l := range strings.Split(status, "\n") {
		for name, dst := range fields {
			v, ok := strings.CutPrefix(l, name)
			if !ok {
				continue
			}
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return m, fmt.Errorf("unable to parse %s %q: %w", name, v, err)
			}
			*dst = kb * 1024
		}
	}
	if m.rss == 0 {
		return m, errors.New("no VmRSS in /proc/<pid>/status")
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// parseStatCPU returns utime + stime from /proc/<pid>/stat.
func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may contain spaces; fields restart after
	// its closing parenthesis, with field 3 (state) first.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, fmt.Errorf("unable to parse utime: %w", err)
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, fmt.Errorf("unable to parse stime: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
