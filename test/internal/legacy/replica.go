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

package legacy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elector-dev/elector/test/internal/proc"
)

// The messages of the stand-in's event log (msg=... on stderr), as
// test/leaderelector05 writes them.
const (
	MsgStarting       = "Starting"
	MsgServing        = "Serving HTTP"
	MsgCurrentLeader  = "Current leader"
	MsgCampaigning    = "Campaigning"
	MsgObservedLeader = "Observed leader"
	MsgStarted        = "Started leading"
	MsgStopped        = "Stopped leading"
	MsgIgnoredSignal  = "Ignored signal"
	MsgLocked         = "Locked lead file"
	MsgUnlocked       = "Unlocked lead file"
	MsgFatal          = "Fatal"
	// MsgOverlap is logged, at level ERROR, when the replica starts
	// leading while another process holds the lead file.
	MsgOverlap = "OVERLAP: the lead file is locked by another leader"
)

// ExitFatal is the stand-in's exit code for every failure, glog.Fatal's.
const ExitFatal = 255

// waitDelay bounds how long Wait waits for the output pipes to close once
// the process has exited.
const waitDelay = 10 * time.Second

// Options configure one stand-in process.
type Options struct {
	Binary     string // from Build
	Kubeconfig string // --kubeconfig, e.g. from Setup
	ID         string // --id; also the name of the replica in logs
	Election   string // --election, the Endpoints object
	Namespace  string // --election-namespace; "" is 0.5's default, "default"
	// TTL is --ttl; 0 is 0.5's default, 10s. The lease duration is TTL,
	// the renew deadline TTL/2, the retry period TTL/4.
	TTL time.Duration
	// HTTP is --http; "" serves on 127.0.0.1 on a free port.
	HTTP string
	// LeadFile is --lead-file: a file the replica holds an exclusive flock
	// on while it leads, e.g. the chaos harness's $CHAOS_LOCK. "" for none.
	LeadFile string
	// Args are further arguments, after the above.
	Args []string
	// Log, when set, receives the output line by line, prefixed with
	// "[ID] ".
	Log io.Writer
}

// args returns the command line of o.
func (o Options) args() []string {
	args := []string{"--kubeconfig=" + o.Kubeconfig, "--election=" + o.Election}
	if o.ID != "" {
		args = append(args, "--id="+o.ID)
	}
	if o.Namespace != "" {
		args = append(args, "--election-namespace="+o.Namespace)
	}
	if o.TTL != 0 {
		args = append(args, "--ttl="+o.TTL.String())
	}
	addr := o.HTTP
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args = append(args, "--http="+addr)
	if o.LeadFile != "" {
		args = append(args, "--lead-file="+o.LeadFile)
	}
	return append(args, o.Args...)
}

// Event is one line of the stand-in's event log.
type Event struct {
	Msg  string
	Line string
	At   time.Time // when this program read it
}

// Replica is a running stand-in process.
type Replica struct {
	ID string // Options.ID

	// Process is the running process: PID, Signal (to the process
	// itself), Done, Wait, ExitCode, Output, Stdout, Stderr.
	*proc.Process
	client *http.Client

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced at every event
	addr    string
	leading bool
}

// Start starts the stand-in with opts. The process leads its own process
// group and is SIGKILLed by the kernel should this process die first; call
// Kill when done.
func Start(opts Options) (*Replica, error) {
	r := &Replica{
		ID:      opts.ID,
		changed: make(chan struct{}),
		client:  &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	p, err := proc.Start(proc.Options{
		Name:      opts.ID,
		Path:      opts.Binary,
		Args:      opts.args(),
		Env:       []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")},
		Log:       opts.Log,
		OnLine:    r.scan,
		WaitDelay: waitDelay,
		OnExit: func() {
			r.mu.Lock()
			r.leading = false
			r.notifyLocked()
			r.mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	r.Process = p
	return r, nil
}

var (
	msgRE  = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S*)`)
	addrRE = regexp.MustCompile(`\baddr=(\S+)`)
)

// scan follows the event log on stderr.
func (r *Replica) scan(line string, stderr bool) {
	if !stderr {
		return
	}
	m := msgRE.FindStringSubmatch(line)
	if m == nil {
		return // klog, or the deprecation warning of v1 Endpoints
	}
	msg := m[1]
	if strings.HasPrefix(msg, `"`) {
		var err error
		if msg, err = strconv.Unquote(msg); err != nil {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch msg {
	case MsgServing:
		if a := addrRE.FindStringSubmatch(line); a != nil && r.addr == "" {
			r.addr = a[1]
		}
	case MsgStarted:
		r.leading = true
	case MsgStopped:
		r.leading = false
	}
	r.events = append(r.events, Event{Msg: msg, Line: line, At: time.Now()})
	r.notifyLocked()
}

func (r *Replica) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitUntil calls cond under r.mu at every event until it returns true,
// the process has exited (cond is asked once more) or ctx ends.
func (r *Replica) waitUntil(ctx context.Context, what string, cond func() bool) error {
	for {
		r.mu.Lock()
		ok := cond()
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-r.Process.Done():
			r.mu.Lock()
			ok := cond()
			r.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("%s exited with code %d before %s:\n%s", r.ID, r.ExitCode(), what, r.Output())
		case <-ctx.Done():
			return fmt.Errorf("%s: not %s: %w", r.ID, what, ctx.Err())
		}
	}
}

// Addr waits until the stand-in serves HTTP and returns its host:port.
func (r *Replica) Addr(ctx context.Context) (string, error) {
	var addr string
	err := r.waitUntil(ctx, "serving HTTP", func() bool { addr = r.addr; return addr != "" })
	return addr, err
}

// Leading reports whether the replica believes it leads: it logged
// MsgStarted and not MsgStopped since, and runs.
func (r *Replica) Leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// WaitLeading waits until Leading is want and returns when this program
// read the event that made it so (now, if it already was).
func (r *Replica) WaitLeading(ctx context.Context, want bool) (time.Time, error) {
	var at time.Time
	what := "leading"
	if !want {
		what = "not leading"
	}
	err := r.waitUntil(ctx, what, func() bool {
		if r.leading != want {
			return false
		}
		at = time.Now()
		for i := len(r.events) - 1; i >= 0; i-- {
			if e := r.events[i]; (want && e.Msg == MsgStarted) || (!want && e.Msg == MsgStopped) {
				at = e.At
				break
			}
		}
		return true
	})
	return at, err
}

// Events returns the events logged so far whose message starts with
// prefix ("" for all).
func (r *Replica) Events(prefix string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []Event
	for _, e := range r.events {
		if strings.HasPrefix(e.Msg, prefix) {
			evs = append(evs, e)
		}
	}
	return evs
}

// Count returns how many events with message msg were logged so far.
func (r *Replica) Count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Msg == msg {
			n++
		}
	}
	return n
}

// WaitFor waits until the replica has logged n events with message msg
// and returns the nth.
func (r *Replica) WaitFor(ctx context.Context, msg string, n int) (Event, error) {
	var ev Event
	err := r.waitUntil(ctx, fmt.Sprintf("logging %q %d times", msg, n), func() bool {
		k := 0
		for _, e := range r.events {
			if e.Msg == msg {
				if k++; k == n {
					ev = e
					return true
				}
			}
		}
		return false
	})
	return ev, err
}

// Overlaps returns the overlaps the replica reported: each time it
// started leading while another process held the lead file.
func (r *Replica) Overlaps() []Event { return r.Events(MsgOverlap) }

// Response is one answer of the stand-in's HTTP server.
type Response = proc.Response

// Get requests path from the replica's --http server.
func (r *Replica) Get(ctx context.Context, path string) (Response, error) {
	addr, err := r.Addr(ctx)
	if err != nil {
		return Response{}, err
	}
	return proc.Get(ctx, r.client, r.ID, addr, path)
}

// LeaderName returns the leader the replica reports on GET /, 0.5's
// {"name":"<leader>"}; "" when it knows none.
func (r *Replica) LeaderName(ctx context.Context) (string, error) {
	resp, err := r.Get(ctx, "/")
	if err != nil {
		return "", err
	}
	return proc.LeaderName(r.ID, resp)
}

// Term sends SIGTERM, as the kubelet does when a Pod is deleted. The
// stand-in ignores it, as 0.5 did, and logs MsgIgnoredSignal.
func (r *Replica) Term() error { return r.Signal(syscall.SIGTERM) }

// Kill SIGKILLs the process group, unless the process has exited already,
// and waits until it is reaped: the only way 0.5 ended. Call it when done
// with the replica; it may be called more than once.
func (r *Replica) Kill() {
	r.Process.Kill()
	r.client.CloseIdleConnections()
}
