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

// Command demo tells elector's story in a dozen lines, on a real
// kube-apiserver and etcd started on this machine: three replicas of the
// sidecar from deploy/examples/nginx, with that example's ServiceAccount,
// least-privilege Role and leader-only Service, elect a leader; the leader
// is deleted gracefully (SIGTERM) and hands over in milliseconds; the next
// one crashes (SIGKILL) and the last takes over once the lease expires.
// The leader label, which the Service selects, follows every time.
//
// Run it with `make demo`, or `cd test && go run ./cmd/demo [-v] [-ttl=5s]`.
// The first run builds kube-apiserver and etcd (about ten minutes on two
// cores, cached afterwards). Ctrl-C stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

const (
	// defaultTTL is the sidecar's --ttl in the demo: the lease a crashed
	// leader leaves behind. Graceful handoffs do not depend on it.
	defaultTTL = 5 * time.Second
	// stepTimeout bounds every wait of the story; it is a failure deadline
	// for a slow machine, not a measurement.
	stepTimeout = 90 * time.Second
	namespace   = "demo"
	example     = "examples/nginx"
	replicas    = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the demo without the process: it returns the exit code. When ctx
// ends (Ctrl-C) it stops every process it started and returns 130.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "copy the replicas' logs to stderr")
	ttl := fs.Duration("ttl", defaultTTL, "the sidecars' --ttl (whole seconds, at least 3s)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || *ttl < 3*time.Second || *ttl%time.Second != 0 {
		fmt.Fprintln(stderr, "usage: demo [-v] [-ttl=5s]  (ttl: whole seconds, at least 3s)")
		return exitUsage
	}
	d := &demo{out: stdout, stderr: stderr, ttl: *ttl}
	if *verbose {
		d.logs = stderr
	}
	err := d.tell(ctx)
	if cerr := d.cleanup(); err == nil {
		err = cerr
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "demo: interrupted; stopped the replicas and the control plane")
		return exitInterrupted
	case err != nil:
		fmt.Fprintf(stderr, "demo: %v\n", err)
		d.dumpLogs()
		return exitFailure
	}
	return exitOK
}

// demo is one run of the story and everything it started.
type demo struct {
	out, stderr io.Writer
	logs        io.Writer // replica logs; nil unless -v
	ttl         time.Duration

	tmp      string
	cp       *controlplane.ControlPlane
	ns       *sidecar.Namespace
	replicas []*sidecar.Replica
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, format+"\n", args...)
}

// tell runs the story.
func (d *demo) tell(ctx context.Context) error {
	deployDir, err := sidecar.DeployDir()
	if err != nil {
		return err
	}
	m, err := sidecar.Render(filepath.Join(deployDir, example))
	if err != nil {
		return err
	}
	lease, err := m.Election()
	if err != nil {
		return err
	}
	container, err := m.ElectorContainer()
	if err != nil {
		return err
	}
	args := sidecar.LocalArgs(sidecar.ContainerArgs(container), "--ttl="+d.ttl.String())
	label, _ := sidecar.Flag(args, "leader-label")
	selector := m.Service.Spec.Selector

	d.say("elector demo: %d replicas of the sidecar in deploy/%s elect a leader on the Lease %q in a local kube-apiserver;",
		replicas, example, lease)
	d.say("  we delete the leader's Pod (SIGTERM), then crash the next leader (SIGKILL), and follow the leader label of Service %s.", m.Service.Name)

	if d.tmp, err = os.MkdirTemp("", "elector-demo-"); err != nil {
		return err
	}
	started := time.Now()
	fmt.Fprintln(d.stderr, "demo: building elector and starting kube-apiserver and etcd...")
	bin, err := d.start(ctx)
	if err != nil {
		return err
	}
	d.say("control plane: kube-apiserver %s + etcd %s at %s, elector built, in %s",
		controlplane.KubernetesVersion, controlplane.EtcdVersion, d.cp.URL(), round(time.Since(started)))

	if d.ns, err = sidecar.Apply(ctx, d.cp, namespace, m, d.tmp); err != nil {
		return err
	}
	sidecar.Settle(ctx, d.ns.Admin, 30*time.Second)
	pods := make([]string, replicas)
	for i := range pods {
		pods[i] = fmt.Sprintf("replica-%d", i+1)
	}
	if err := d.ns.CreatePods(ctx, m.Deployment.Spec.Template, pods...); err != nil {
		return err
	}
	d.say("namespace %s: the example's ServiceAccount, Role (one Lease, events, pods), RoleBinding and Service; Pods %s (Pending: no nodes)",
		namespace, strings.Join(pods, ", "))
	d.say("each replica runs: elector %s (as ServiceAccount %s/%s)", strings.Join(args, " "), namespace, d.ns.ServiceAccount)

	// The first replica leads; the others follow.
	first, err := d.startReplica(bin, pods[0], args)
	if err != nil {
		return err
	}
	led, err := d.waitLeads(ctx, first)
	if err != nil {
		return err
	}
	for _, p := range pods[1:] {
		if _, err := d.startReplica(bin, p, args); err != nil {
			return err
		}
	}
	if err := d.agree(ctx, first.Name, d.replicas...); err != nil {
		return err
	}
	d.say("%s leads (token %d); all %d agree on GET / → {\"name\":%q}", first.Name, led.Token, replicas, first.Name)
	if _, err := d.ns.WaitForSelectedPods(ctx, selector, first.Name); err != nil {
		return err
	}
	d.say("Service %s selects %s only (label %s)", m.Service.Name, first.Name, label)

	// Graceful: SIGTERM, as the kubelet sends when the Pod is deleted.
	next, err := d.handOver(ctx, first, selector)
	if err != nil {
		return err
	}

	// Crash: SIGKILL; nobody releases the Lease or removes the label.
	survivor, err := d.takeOver(ctx, next, selector)
	if err != nil {
		return err
	}

	if err := d.events(ctx, lease, survivor); err != nil {
		return err
	}
	if err := survivor.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	c, cancel := step(ctx)
	defer cancel()
	code, err := survivor.Wait(c)
	if err != nil {
		return err
	}
	if err := d.cleanup(); err != nil {
		return err
	}
	d.say("stopped %s (exit %d) and the control plane; no process left", survivor.Name, code)
	return nil
}

// start builds elector while the control plane starts.
func (d *demo) start(ctx context.Context) (string, error) {
	type built struct {
		bin string
		err error
	}
	ch := make(chan built, 1)
	go func() {
		bin, err := sidecar.Build(ctx, d.tmp)
		ch <- built{bin, err}
	}()
	cp, err := controlplane.Start(ctx, controlplane.Options{Out: d.stderr})
	b := <-ch
	if err != nil {
		return "", err
	}
	d.cp = cp
	return b.bin, b.err
}

func (d *demo) startReplica(bin, pod string, args []string) (*sidecar.Replica, error) {
	r, err := sidecar.Start(sidecar.Options{
		Binary: bin, Kubeconfig: d.ns.Kubeconfig,
		PodName: pod, PodNamespace: d.ns.Name,
		Args: args, Log: d.logs,
	})
	if err != nil {
		return nil, err
	}
	d.replicas = append(d.replicas, r)
	return r, nil
}

// alive returns the replicas still running, except skip.
func (d *demo) alive(skip *sidecar.Replica) []*sidecar.Replica {
	var rs []*sidecar.Replica
	for _, r := range d.replicas {
		select {
		case <-r.Done():
		default:
			if r != skip {
				rs = append(rs, r)
			}
		}
	}
	return rs
}

// step bounds one wait of the story.
func step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, stepTimeout)
}

func (d *demo) waitLeads(ctx context.Context, r *sidecar.Replica) (sidecar.Leader, error) {
	c, cancel := step(ctx)
	defer cancel()
	events, err := r.Watch(c)
	if err != nil {
		return sidecar.Leader{}, err
	}
	l, err := sidecar.WaitUntilLeads(c, events)
	if err != nil {
		return l, fmt.Errorf("%s did not lead: %w", r.Name, err)
	}
	return l, nil
}

// agree waits until every replica answers GET / with the leader.
func (d *demo) agree(ctx context.Context, leader string, rs ...*sidecar.Replica) error {
	c, cancel := step(ctx)
	defer cancel()
	for _, r := range rs {
		for {
			name, err := r.LeaderName(c)
			if err == nil && name == leader {
				break
			}
			if c.Err() != nil {
				return fmt.Errorf("%s names %q on GET /, not %s: %v", r.Name, name, leader, err) //nolint:errorlint // err may be nil: a wrong name
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// handOver SIGTERMs the leader and reports the handoff.
func (d *demo) handOver(ctx context.Context, leader *sidecar.Replica, selector map[string]string) (*sidecar.Replica, error) {
	c, cancel := step(ctx)
	defer cancel()
	streams := map[*sidecar.Replica]<-chan sidecar.Leader{}
	for _, r := range d.alive(leader) {
		ch, err := r.Watch(c)
		if err != nil {
			return nil, err
		}
		streams[r] = ch
	}
	sent := time.Now()
	if err := leader.Signal(syscall.SIGTERM); err != nil {
		return nil, err
	}
	next, led, err := sidecar.FirstToLead(c, streams)
	if err != nil {
		return nil, fmt.Errorf("no replica led after SIGTERM to %s: %w", leader.Name, err)
	}
	labeled, err := d.ns.WaitForSelectedPods(c, selector, next.Name)
	if err != nil {
		return nil, err
	}
	code, err := leader.Wait(c)
	if err != nil {
		return nil, err
	}
	d.say("SIGTERM %s: it released the Lease and exited %d", leader.Name, code)
	if err := d.agree(ctx, next.Name, d.alive(nil)...); err != nil {
		return nil, err
	}
	d.say("handoff to %s in %s (token %d); label moved after %s; the %d left agree on GET /",
		next.Name, round(led.Seen.Sub(sent)), led.Token, round(labeled.Sub(sent)), len(d.alive(nil)))
	return next, nil
}

// takeOver SIGKILLs the leader and reports the takeover.
func (d *demo) takeOver(ctx context.Context, leader *sidecar.Replica, selector map[string]string) (*sidecar.Replica, error) {
	rest := d.alive(leader)
	if len(rest) != 1 {
		return nil, fmt.Errorf("%d replicas besides the leader, want 1", len(rest))
	}
	survivor := rest[0]
	c, cancel := step(ctx)
	defer cancel()
	events, err := survivor.Watch(c)
	if err != nil {
		return nil, err
	}
	killed := time.Now()
	if err := leader.Signal(syscall.SIGKILL); err != nil {
		return nil, err
	}
	d.say("SIGKILL %s: no release, and its label stays; %s must wait out the lease", leader.Name, survivor.Name)
	led, err := sidecar.WaitUntilLeads(c, events)
	if err != nil {
		return nil, fmt.Errorf("%s did not take over: %w", survivor.Name, err)
	}
	labeled, err := d.ns.WaitForSelectedPods(c, selector, survivor.Name)
	if err != nil {
		return nil, err
	}
	d.say("takeover by %s after %s (lease %s, token %d); label moved to it, and removed from dead %s, after %s",
		survivor.Name, round(led.Seen.Sub(killed)), d.ttl, led.Token, leader.Name, round(labeled.Sub(killed)))
	return survivor, nil
}

// events prints the Events on the Lease once the last leader's is there
// (they are written in the background).
func (d *demo) events(ctx context.Context, lease string, last *sidecar.Replica) error {
	c, cancel := step(ctx)
	defer cancel()
	for {
		evs, err := d.ns.LeaseEvents(c, lease)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.ReportingInstance+" "+e.Reason)
		}
		if slices.Contains(got, last.Name+" BecameLeader") {
			d.say("Events on Lease %s: %s", lease, strings.Join(got, ", "))
			return nil
		}
		select {
		case <-c.Done():
			return fmt.Errorf("no BecameLeader Event of %s on Lease %s: %q", last.Name, lease, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cleanup kills the replicas that still run, stops the control plane and
// removes the temporary files. It may run twice.
func (d *demo) cleanup() error {
	for _, r := range d.replicas {
		r.Kill()
	}
	var errs []error
	if d.cp != nil {
		errs = append(errs, d.cp.Stop())
		if a, e := d.cp.PIDs(); a != 0 || e != 0 {
			errs = append(errs, fmt.Errorf("kube-apiserver (pid %d) or etcd (pid %d) still runs", a, e))
		}
	}
	for _, r := range d.replicas {
		if err := syscall.Kill(-r.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("process group of %s (%d) still exists", r.Name, r.PID()))
		}
	}
	if d.tmp != "" {
		errs = append(errs, os.RemoveAll(d.tmp))
	}
	return errors.Join(errs...)
}

// dumpLogs prints the end of each replica's log after a failure.
func (d *demo) dumpLogs() {
	if d.logs != nil {
		return // already printed
	}
	for _, r := range d.replicas {
		lines := strings.Split(strings.TrimRight(r.Output(), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(d.stderr, "--- last lines of %s (exit %d):\n%s\n", r.Name, r.ExitCode(), strings.Join(lines, "\n"))
	}
}

// round renders a duration for the story: 0.4ms, 12ms, 340ms, 5.0s.
func round(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}
