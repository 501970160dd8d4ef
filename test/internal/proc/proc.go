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

// Package proc runs the programs of the tests (the elector sidecar, the
// stand-in of leader-elector:0.5) as child processes the way packages
// sidecar and legacy need them: each in its own process group, SIGKILLed
// by the kernel should the test process die first, its output collected
// and passed on line by line, and a small HTTP client for its endpoints.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure one process.
type Options struct {
	Name string // for messages, and the log prefix "[Name] "
	Path string
	Args []string
	Env  []string // the whole environment
	// Log, when set, receives the output line by line, prefixed with
	// "[Name] ".
	Log io.Writer
	// OnLine, when set, is called with every complete line of output (and
	// an unterminated last one), in order per stream.
	OnLine func(line string, stderr bool)
	// OnExit, when set, is called once the process has been reaped and its
	// output passed on, before Done is closed.
	OnExit func()
	// WaitDelay bounds how long Wait waits for the output pipes to close
	// once the process has exited (exec.Cmd.WaitDelay).
	WaitDelay time.Duration
}

// Process is a running child process.
type Process struct {
	name string
	pid  int
	done chan struct{} // closed once the process has been reaped
	err  error         // from Wait, written before done is closed
	ps   *os.ProcessState
	out  *output
}

// Start starts the process. It leads its own process group and is
// SIGKILLed by the kernel should this process die first; call Kill when
// done.
func Start(o Options) (*Process, error) {
	p := &Process{name: o.Name, done: make(chan struct{})}
	p.out = &output{log: o.Log, prefix: "[" + o.Name + "] ", onLine: o.OnLine}

	cmd := exec.Command(o.Path, o.Args...)
	cmd.Env = o.Env
	cmd.Stdout = p.out.writer(false)
	cmd.Stderr = p.out.writer(true)
	cmd.WaitDelay = o.WaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// The kernel sends Pdeathsig when the thread that forked the child
	// exits, and Go retires threads: fork and wait on a locked thread.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		p.ps = cmd.ProcessState
		p.out.flush()
		if o.OnExit != nil {
			o.OnExit()
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("unable to start %s: %w", o.Path, err)
	}
	p.pid = cmd.Process.Pid
	return p, nil
}

// PID returns the process ID, which is also its process group ID.
func (p *Process) PID() int { return p.pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process itself (not its group). It does nothing
// once the process has exited.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("unable to signal %s: %w", p.name, err)
	}
	return nil
}

// Wait waits for the process to exit and returns its exit code (128+N when
// killed by signal N).
func (p *Process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.ExitCode(), nil
	case <-ctx.Done():
		return -1, fmt.Errorf("%s has not exited: %w", p.name, ctx.Err())
	}
}

// ExitCode returns the exit code (128+N when killed by signal N), or -1
// while the process runs.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
	default:
		return -1
	}
	if p.ps == nil {
		return -1
	}
	if ws, ok := p.ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.ps.ExitCode()
}

// Kill SIGKILLs the process group, unless the process has exited already,
// and waits until it is reaped. It may be called more than once.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// Output returns everything the process wrote so far, stdout and stderr
// interleaved.
func (p *Process) Output() string { return p.out.text(&p.out.buf) }

// Stdout returns what the process wrote to stdout so far.
func (p *Process) Stdout() string { return p.out.text(&p.out.stdout) }

// Stderr returns what the process wrote to stderr so far.
func (p *Process) Stderr() string { return p.out.text(&p.out.stderr) }

// output collects a process's stdout and stderr, and passes each complete
// line to onLine and, prefixed, to log.
type output struct {
	log    io.Writer
	prefix string
	onLine func(line string, stderr bool)

	mu      sync.Mutex
	buf     bytes.Buffer // both streams
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	partial [2][]byte
}

type streamWriter struct {
	o      *output
	stderr bool
}

func (o *output) writer(stderr bool) io.Writer { return streamWriter{o, stderr} }

func (w streamWriter) Write(b []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	i := 0
	if w.stderr {
		i = 1
		o.stderr.Write(b)
	} else {
		o.stdout.Write(b)
	}
	o.buf.Write(b)
	o.partial[i] = append(o.partial[i], b...)
	for {
		j := bytes.IndexByte(o.partial[i], '\n')
		if j < 0 {
			break
		}
		o.line(string(o.partial[i][:j]), w.stderr)
		o.partial[i] = o.partial[i][j+1:]
	}
	return len(b), nil
}

func (o *output) line(l string, stderr bool) {
	if o.onLine != nil {
		o.onLine(l, stderr)
	}
	if o.log != nil {
		fmt.Fprintf(o.log, "%s%s\n", o.prefix, l)
	}
}

// flush passes on unterminated last lines.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.partial {
		if len(o.partial[i]) > 0 {
			o.line(string(o.partial[i]), i == 1)
			o.partial[i] = nil
		}
	}
}

func (o *output) text(b *bytes.Buffer) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return b.String()
}

// Response is one answer of a process's HTTP server.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Get requests path from the HTTP server at addr (host:port) of the
// process name, reading at most 1 MiB of the body.
func Get(ctx context.Context, client *http.Client, name, addr, path string) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return Response{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("GET %s from %s: %w", path, name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Response{}, fmt.Errorf("GET %s from %s: %w", path, name, err)
	}
	return Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}, nil
}

// LeaderName decodes the answer of GET / from the process name, as
// leader-elector:0.5 gave it and elector gives it: {"name":"<leader>"}.
func LeaderName(name string, resp Response) (string, error) {
	if resp.Status != http.StatusOK {
		return "", fmt.Errorf("GET / from %s: status %d: %s", name, resp.Status, resp.Body)
	}
	var v struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil || v.Name == nil {
		return "", fmt.Errorf("GET / from %s: body %q is not {\"name\":...}", name, resp.Body)
	}
	return *v.Name, nil
}

// ModuleOf returns the module path of dir/go.mod.
func ModuleOf(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s/go.mod has no module line", dir)
}

// GoBuild runs `go args...` in dir with GOWORK=off (the module builds on
// its own go.mod; a go.work of the caller must not change its dependency
// graph). what names the program in errors.
func GoBuild(ctx context.Context, what, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("unable to build %s: %w", what, ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("unable to build %s (go %s in %s): %w\n%s", what, strings.Join(args, " "), dir, err, output.String())
		}
		return fmt.Errorf("unable to build %s: %w", what, err)
	}
	return nil
}
