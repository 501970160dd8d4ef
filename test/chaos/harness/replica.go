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

package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elector-dev/elector/test/chaos/faultproxy"
	"github.com/elector-dev/elector/test/controlplane"
)

// Exit codes of cmd/elector (see cmd/elector/main.go).
const (
	ExitLost     = 6
	ExitOverrun  = 7
	exitRaceFail = 66 // a -race binary that found a data race
)

// restartDelay is how long a replica stays down after it exits, like a
// kubelet restarting a container (without the back-off).
const restartDelay = 200 * time.Millisecond

// stopTimeout is how long a replica gets to exit after SIGTERM.
const stopTimeout = 10 * time.Second

// Replica is one sidecar: cmd/elector in exec mode, running the actor
// while it leads, behind its own fault proxy. It is restarted whenever it
// exits, until Stop.
type Replica struct {
	ID    string
	Proxy *faultproxy.Proxy
	env   *Env
	args  []string
	vars  []string
	log   *os.File

	mu       sync.Mutex
	pid      int   // running elector, 0 if none
	paused   []int // pids stopped by Pause
	stopping bool
	exits    []int
	done     chan struct{}
}

// ReplicaOptions tune a replica.
type ReplicaOptions struct {
	// Store is the URL of a fenced store the actor writes to.
	Store string
	// DefaultTTL leaves --ttl out, so that the replica runs on the
	// sidecar's default timings (ttl 10s) instead of SidecarTTL.
	DefaultTTL bool
}

// StartReplica starts a sidecar replica. Stop it with Stop.
func (e *Env) StartReplica(b Binaries, id string, opts ReplicaOptions) (*Replica, error) {
	p, err := faultproxy.New(e.apiAddr())
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(e.Dir, id+".kubeconfig")
	if err := controlplane.WriteKubeconfig(e.via(p.Addr()), kubeconfig); err != nil {
		p.Close()
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(e.Dir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.Close()
		return nil, err
	}
	r := &Replica{
		ID: id, Proxy: p, env: e, log: log, done: make(chan struct{}),
		args: []string{
			b.Elector,
			"--election=" + e.Lease, "--election-namespace=" + e.NS, "--id=" + id,
			"--kubeconfig=" + kubeconfig,
			"--events=false", "--skip-permission-check",
			"--", b.Actor,
		},
		vars: append(os.Environ(),
			"CHAOS_RECORD="+e.Record, "CHAOS_LOCK="+e.Lock, "CHAOS_STORE="+opts.Store,
			// A -race binary sleeps a second at exit by default; the
			// elector would count the watchdog's sleep against its stop
			// budget.
			"GORACE=atexit_sleep_ms=0",
			marker(e),
		),
	}
	if !opts.DefaultTTL {
		// After --id, where it has always been.
		r.args = slices.Insert(r.args, 4, "--ttl="+SidecarTTL.String())
	}
	go r.supervise()
	return r, nil
}

// marker is an environment variable that every process of an Env's
// replicas inherits, so that stragglers can be found and killed.
func marker(e *Env) string { return "CHAOS_ENV=" + e.NS }

// supervise runs the elector, and again after it exits, until Stop.
func (r *Replica) supervise() {
	defer close(r.done)
	for {
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		code, err := r.runOnce()
		if err != nil {
			r.env.Logf("%s: %v", r.ID, err)
		}
		r.mu.Lock()
		r.exits = append(r.exits, code)
		stopping := r.stopping
		r.mu.Unlock()
		r.env.Rec.Note(r.ID, "elector exited with code "+strconv.Itoa(code))
		if stopping {
			return
		}
		time.Sleep(restartDelay)
	}
}

// runOnce starts the elector and waits for it. The process is started
// and waited for on one locked OS thread, so that PR_SET_PDEATHSIG
// (which fires when the forking thread exits) kills it only when this
// process dies.
func (r *Replica) runOnce() (int, error) {
	started := make(chan error, 1)
	result := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(r.args[0], r.args[1:]...)
		cmd.Env = r.vars
		cmd.Stdout, cmd.Stderr = r.log, r.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			started <- errors.New("stopping")
			return
		}
		err := cmd.Start()
		if err == nil {
			r.pid = cmd.Process.Pid
		}
		r.mu.Unlock()
		started <- err
		if err != nil {
			return
		}
		_ = cmd.Wait()
		r.mu.Lock()
		r.pid = 0
		r.paused = nil
		r.mu.Unlock()
		result <- exitCode(cmd.ProcessState)
	}()
	if err := <-started; err != nil {
		return -1, err
	}
	return <-result, nil
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// PID is the running elector's process ID, or 0.
func (r *Replica) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Tree lists the running elector and its descendants (watchdog, actor).
func (r *Replica) Tree() []int {
	pid := r.PID()
	if pid == 0 {
		return nil
	}
	return tree(pid)
}

// Kill sends SIGKILL to the elector only: its watchdog sees the pipe
// close and kills the actor.
func (r *Replica) Kill() {
	if pid := r.PID(); pid != 0 {
		r.Cont()
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// KillAll sends SIGKILL to the elector, the watchdog and the actor at
// once, as when a container is killed.
func (r *Replica) KillAll() {
	pids := r.Tree()
	r.Cont()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// PauseElector sends SIGSTOP to the elector process only; its watchdog
// and actor keep running.
func (r *Replica) PauseElector() {
	if pid := r.PID(); pid != 0 {
		r.pause([]int{pid})
	}
}

// PauseAll sends SIGSTOP to the elector, the watchdog and the actor.
func (r *Replica) PauseAll() { r.pause(r.Tree()) }

// PauseExceptActor sends SIGSTOP to the elector and the watchdog but not
// the actor: without its watchdog the actor is stopped only by the
// elector, as in consul lock.
func (r *Replica) PauseExceptActor() {
	t := r.Tree()
	if len(t) > 2 {
		t = t[:2]
	}
	r.pause(t)
}

func (r *Replica) pause(pids []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range pids {
		if syscall.Kill(pid, syscall.SIGSTOP) == nil {
			r.paused = append(r.paused, pid)
		}
	}
}

// ContActor resumes only the last paused process (the actor of PauseAll).
func (r *Replica) ContActor() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.paused); n > 0 {
		_ = syscall.Kill(r.paused[n-1], syscall.SIGCONT)
		r.paused = r.paused[:n-1]
	}
}

// Cont resumes every paused process, the actor first.
func (r *Replica) Cont() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.paused) - 1; i >= 0; i-- {
		_ = syscall.Kill(r.paused[i], syscall.SIGCONT)
	}
	r.paused = nil
}

// Stop ends the replica: SIGTERM (the elector stops the actor and
// releases the Lease), SIGKILL of everything left after stopTimeout. It
// returns the exit codes of every run.
func (r *Replica) Stop() []int {
	r.Proxy.Heal()
	r.Cont()
	r.mu.Lock()
	r.stopping = true
	pid := r.pid
	r.mu.Unlock()
	var pids []int
	if pid != 0 {
		pids = tree(pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		r.env.Logf("%s: did not stop within %v after SIGTERM; killing it", r.ID, stopTimeout)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		<-r.done
	}
	r.Proxy.Close()
	r.log.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exits)
}

// Exits returns the exit codes of the runs so far.
func (r *Replica) Exits() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exits)
}

// Target is what a fault applies to.
func (r *Replica) Target() string { return r.ID }

// KillStragglers kills every process that carries the Env's marker: a
// watchdog or actor orphaned by a test that failed half-way. It returns
// how many it found.
func KillStragglers(e *Env) int {
	want := marker(e)
	n := 0
	for _, pid := range allPIDs() {
		if pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(b), "\x00"), want) {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// tree is pid and its descendants, parents before children.
func tree(pid int) []int {
	parents := map[int][]int{}
	for _, p := range allPIDs() {
		if pp := ppid(p); pp > 0 {
			parents[pp] = append(parents[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		kids := parents[out[i]]
		slices.Sort(kids)
		out = append(out, kids...)
	}
	return out
}

func allPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ppid reads the parent of pid from /proc/pid/stat, or -1.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	pp, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return pp
}
