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

package sidecar

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/elector-dev/elector/test/internal/proc"
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

	// Process is the running process: PID, Signal (to the process
	// itself, as the kubelet signals a container's PID 1), Done, Wait,
	// ExitCode, Output, Stdout, Stderr.
	*proc.Process

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
		addrC:  make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		stream: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if opts.PodName != "" {
		env = append(env, "POD_NAME="+opts.PodName)
	}
	if opts.PodNamespace != "" {
		env = append(env, "POD_NAMESPACE="+opts.PodNamespace)
	}
	if RaceEnabled {
		// The race runtime sleeps 1s before exiting by default, which
		// would slow every stop (of elector and of its command) down.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	p, err := proc.Start(proc.Options{
		Name:      opts.PodName,
		Path:      opts.Binary,
		Args:      append([]string{"--kubeconfig=" + opts.Kubeconfig}, opts.Args...),
		Env:       append(env, opts.Env...),
		Log:       opts.Log,
		OnLine:    r.scan,
		WaitDelay: waitDelay,
	})
	if err != nil {
		return nil, err
	}
	r.Process = p
	return r, nil
}

// servingRE finds the listen address in the "Serving HTTP" log line.
var servingRE = regexp.MustCompile(`msg="?Serving HTTP"? .*\baddr=(\S+)`)

func (r *Replica) scan(line string, _ bool) {
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
	case <-r.Process.Done():
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

// Kill SIGKILLs the process group, unless the process has exited already,
// and waits until it is reaped. An exec-mode watchdog, in a group of its
// own, then sees its pipe close and kills the command.
func (r *Replica) Kill() {
	r.Process.Kill()
	r.client.CloseIdleConnections()
	r.stream.CloseIdleConnections()
}
