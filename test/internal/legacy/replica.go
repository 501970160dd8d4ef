package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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

	pid  int
	done chan struct{} // closed once the process has been reaped
	ps   *os.ProcessState

	out    *output
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
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		client:  &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	r.out = &output{log: opts.Log, prefix: "[" + opts.ID + "] ", onLine: r.scan}

	cmd := exec.Command(opts.Binary, opts.args()...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout = r.out.writer(false)
	cmd.Stderr = r.out.writer(true)
	cmd.WaitDelay = waitDelay
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
		_ = cmd.Wait() // the exit status is in ProcessState
		r.ps = cmd.ProcessState
		r.out.flush()
		r.mu.Lock()
		r.leading = false
		r.notifyLocked()
		r.mu.Unlock()
		close(r.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("unable to start %s: %w", opts.Binary, err)
	}
	r.pid = cmd.Process.Pid
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
		case <-r.done:
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

// PID returns the process ID, which is also its process group ID.
func (r *Replica) PID() int { return r.pid }

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
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Get requests path from the replica's --http server.
func (r *Replica) Get(ctx context.Context, path string) (Response, error) {
	addr, err := r.Addr(ctx)
	if err != nil {
		return Response{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return Response{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("GET %s from %s: %w", path, r.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Response{}, fmt.Errorf("GET %s from %s: %w", path, r.ID, err)
	}
	return Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}, nil
}

// LeaderName returns the leader the replica reports on GET /, 0.5's
// {"name":"<leader>"}; "" when it knows none.
func (r *Replica) LeaderName(ctx context.Context) (string, error) {
	resp, err := r.Get(ctx, "/")
	if err != nil {
		return "", err
	}
	if resp.Status != http.StatusOK {
		return "", fmt.Errorf("GET / from %s: status %d: %s", r.ID, resp.Status, resp.Body)
	}
	var v struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil || v.Name == nil {
		return "", fmt.Errorf("GET / from %s: body %q is not {\"name\":...}", r.ID, resp.Body)
	}
	return *v.Name, nil
}

// Signal sends sig to the process. It does nothing once the process has
// exited.
func (r *Replica) Signal(sig syscall.Signal) error {
	select {
	case <-r.done:
		return nil
	default:
	}
	if err := syscall.Kill(r.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("unable to signal %s: %w", r.ID, err)
	}
	return nil
}

// Term sends SIGTERM, as the kubelet does when a Pod is deleted. The
// stand-in ignores it, as 0.5 did, and logs MsgIgnoredSignal.
func (r *Replica) Term() error { return r.Signal(syscall.SIGTERM) }

// Done is closed once the process has exited and been reaped.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Wait waits for the process to exit and returns its exit code (128+N when
// killed by signal N).
func (r *Replica) Wait(ctx context.Context) (int, error) {
	select {
	case <-r.done:
		return r.ExitCode(), nil
	case <-ctx.Done():
		return -1, fmt.Errorf("%s has not exited: %w", r.ID, ctx.Err())
	}
}

// ExitCode returns the exit code, or -1 while the process runs.
func (r *Replica) ExitCode() int {
	select {
	case <-r.done:
	default:
		return -1
	}
	if r.ps == nil {
		return -1
	}
	if ws, ok := r.ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return r.ps.ExitCode()
}

// Kill SIGKILLs the process group, unless the process has exited already,
// and waits until it is reaped: the only way 0.5 ended. Call it when done
// with the replica; it may be called more than once.
func (r *Replica) Kill() {
	select {
	case <-r.done:
	default:
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		<-r.done
	}
	r.client.CloseIdleConnections()
}

// Output returns everything the process wrote so far, stdout and stderr
// interleaved.
func (r *Replica) Output() string { return r.out.all() }

// Stdout returns what the process wrote to stdout so far: 0.5's
// "<leader> is the leader" lines.
func (r *Replica) Stdout() string { return r.out.stdoutText() }

// output collects a process's stdout and stderr, and passes each complete
// line to onLine and, prefixed, to log.
type output struct {
	log    io.Writer
	prefix string
	onLine func(line string, stderr bool)

	mu      sync.Mutex
	buf     bytes.Buffer // both streams
	stdout  bytes.Buffer
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

func (o *output) all() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) stdoutText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stdout.String()
}
