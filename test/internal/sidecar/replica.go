package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// waitDelay bounds how long Wait waits for the output pipes to close once
// elector has exited: in exec mode its watchdog and command hold them
// until they have stopped too.
const waitDelay = 10 * time.Second

// Options configure one elector process.
type Options struct {
	Binary     string // from Build
	Kubeconfig string // --kubeconfig, e.g. Namespace.Kubeconfig
	// PodName and PodNamespace are set as $POD_NAME and $POD_NAMESPACE, as
	// the Downward API does in the manifests. PodName is also the identity.
	PodName, PodNamespace string
	// Args are elector's arguments after --kubeconfig, e.g. from LocalArgs.
	Args []string
	// Env is added to the environment, which is otherwise PATH, HOME, the
	// above and, with -race, GORACE.
	Env []string
	// Log, when set, receives the output line by line, prefixed with
	// "[PodName] ".
	Log io.Writer
}

// Replica is a running elector process.
type Replica struct {
	Name string // PodName

	pid  int
	done chan struct{} // closed once the process has been reaped
	err  error         // from Wait, written before done is closed
	ps   *os.ProcessState

	out      *output
	addrOnce sync.Once
	addrC    chan struct{} // closed once addr is known
	addr     string

	client *http.Client // requests, with a timeout
	stream *http.Client // /watch, ended by its context
}

// Start starts elector with opts. The process leads its own process group
// and is SIGKILLed by the kernel should this process die first; call Kill
// when done.
func Start(opts Options) (*Replica, error) {
	r := &Replica{
		Name:   opts.PodName,
		done:   make(chan struct{}),
		addrC:  make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		stream: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	r.out = &output{log: opts.Log, prefix: "[" + opts.PodName + "] ", onLine: r.scan}

	args := append([]string{"--kubeconfig=" + opts.Kubeconfig}, opts.Args...)
	cmd := exec.Command(opts.Binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if opts.PodName != "" {
		cmd.Env = append(cmd.Env, "POD_NAME="+opts.PodName)
	}
	if opts.PodNamespace != "" {
		cmd.Env = append(cmd.Env, "POD_NAMESPACE="+opts.PodNamespace)
	}
	if RaceEnabled {
		// The race runtime sleeps 1s before exiting by default, which
		// would slow every stop (of elector and of its command) down.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, opts.Env...)
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
		r.err = cmd.Wait()
		r.ps = cmd.ProcessState
		r.out.flush()
		close(r.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("unable to start %s: %w", opts.Binary, err)
	}
	r.pid = cmd.Process.Pid
	return r, nil
}

// PID returns the process ID, which is also its process group ID.
func (r *Replica) PID() int { return r.pid }

// servingRE finds the listen address in the "Serving HTTP" log line.
var servingRE = regexp.MustCompile(`msg="?Serving HTTP"? .*\baddr=(\S+)`)

func (r *Replica) scan(line string) {
	if m := servingRE.FindStringSubmatch(line); m != nil {
		r.addrOnce.Do(func() {
			r.addr = m[1]
			close(r.addrC)
		})
	}
}

// Addr waits until elector serves HTTP and returns its host:port.
func (r *Replica) Addr(ctx context.Context) (string, error) {
	select {
	case <-r.addrC:
		return r.addr, nil
	case <-r.done:
		select {
		case <-r.addrC:
			return r.addr, nil
		default:
		}
		return "", fmt.Errorf("%s exited with code %d before serving HTTP:\n%s", r.Name, r.ExitCode(), r.Output())
	case <-ctx.Done():
		return "", fmt.Errorf("%s does not serve HTTP yet: %w", r.Name, ctx.Err())
	}
}

// Signal sends sig to the elector process itself, as the kubelet does to a
// container's PID 1. It does nothing once the process has exited.
func (r *Replica) Signal(sig syscall.Signal) error {
	select {
	case <-r.done:
		return nil
	default:
	}
	if err := syscall.Kill(r.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("unable to signal %s: %w", r.Name, err)
	}
	return nil
}

// Done is closed once the process has exited and been reaped.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Wait waits for the process to exit and returns its exit code (128+N when
// killed by signal N).
func (r *Replica) Wait(ctx context.Context) (int, error) {
	select {
	case <-r.done:
		return r.ExitCode(), nil
	case <-ctx.Done():
		return -1, fmt.Errorf("%s has not exited: %w", r.Name, ctx.Err())
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
// and waits until it is reaped. An exec-mode watchdog, in a group of its
// own, then sees its pipe close and kills the command.
func (r *Replica) Kill() {
	select {
	case <-r.done:
	default:
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		<-r.done
	}
	r.client.CloseIdleConnections()
	r.stream.CloseIdleConnections()
}

// Output returns everything the process wrote so far, stdout and stderr
// interleaved.
func (r *Replica) Output() string { return r.out.all() }

// Stderr returns what the process wrote to stderr so far.
func (r *Replica) Stderr() string { return r.out.stderrText() }

// output collects a process's stdout and stderr, and passes each complete
// line to onLine and, prefixed, to log.
type output struct {
	log    io.Writer
	prefix string
	onLine func(string)

	mu      sync.Mutex
	buf     bytes.Buffer // both streams
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
	}
	o.buf.Write(b)
	o.partial[i] = append(o.partial[i], b...)
	for {
		j := bytes.IndexByte(o.partial[i], '\n')
		if j < 0 {
			break
		}
		o.line(string(o.partial[i][:j]))
		o.partial[i] = o.partial[i][j+1:]
	}
	return len(b), nil
}

func (o *output) line(l string) {
	if o.onLine != nil {
		o.onLine(l)
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
			o.line(string(o.partial[i]))
			o.partial[i] = nil
		}
	}
}

func (o *output) all() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) stderrText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stderr.String()
}
