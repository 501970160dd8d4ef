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
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector/internal/rbac"
)

const (
	// defaultHandoffTimeout bounds the wait for the new holder. The
	// holder first stops its work (the sidecar's command or the library's
	// leader function), which may take up to its stop grace, then writes
	// the Lease; 30s covers the library's default renew deadline (10s)
	// three times over.
	defaultHandoffTimeout = 30 * time.Second
	// handoffRetries bounds the request's attempts when the Lease changes
	// under it (every renewal changes its resourceVersion).
	handoffRetries = 5
	// withdrawTimeout bounds the withdrawal of a request after a timeout
	// or ^C.
	withdrawTimeout = 5 * time.Second
)

func (a *app) handoffCommand() *cobra.Command {
	var to string
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "handoff NAME [--to ID] [--timeout 30s]",
		Short: "Ask the leader of Lease NAME to hand leadership over, and wait for the new leader",
		Long: `Ask the holder of Lease NAME for a planned handoff: to the candidate ID (--to),
or to anyone else. The holder stops its work first, then writes the Lease to
the target (or releases it while it stands aside); the target writes the
Lease itself before it starts its work. The command waits, on a watch, until
the new leader has taken over and prints who leads now, the new token and how
long it took.

Only elector candidates act on a request (they mark their writes with the
annotation elector.dev/holder); for a client-go holder, or a Lease without a
live holder, the command refuses at once (exit 7). A target that is not
running never takes over: after the lease duration any candidate may take the
Lease. On a timeout the request is withdrawn (exit 8).

Before it asks, it checks that someone would take the Lease, and refuses
(exit 7) otherwise: --to ID must name a Pod of the Lease's namespace that is
Ready and not terminating (the sidecar's identity is its Pod name; it is
Ready once it has read the Lease, leader or not); without --to, the
holder's Pod must have another Ready Pod of the same workload (Deployment,
StatefulSet, ...). A typo would otherwise stop the leader and leave the
Lease without one for a whole lease duration. --force skips these checks,
for candidates whose identities are not Pod names.

The request is the annotation elector.dev/handoff-to on the Lease, written
with an update that carries the Lease's resourceVersion. It needs get, watch
and update on the Lease, and get and list on pods for the checks; without
them the Role to grant is printed (exit 4).`,
		Example: `  kubectl elector handoff my-controller -n team-a
  kubectl elector handoff my-controller -n team-a --to my-controller-7d9f-x2k4q
  kubectl elector handoff my-controller -n team-a --to worker-3.example --force`,
		Args: exactArgs(1, "the Lease NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usageErr(cmd, "--timeout=%s: want a positive duration such as 30s", timeout)
			}
			if cmd.Flags().Changed("to") && to == "" {
				return usageErr(cmd, "--to is empty: name the target's identity, or leave --to out to hand off to anyone else")
			}
			return a.handoff(cmd, args[0], to, timeout, force)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the identity of the candidate to hand leadership to (default: anyone else)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHandoffTimeout, "how long to wait for the new leader")
	cmd.Flags().BoolVar(&force, "force", false, "ask even if no Ready Pod shows that the target (or, without --to, another candidate) is running")
	return cmd
}

// handoffRules are what the operator needs for handoff.
func handoffRules(name string) []rbac.Rule {
	return []rbac.Rule{
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "get", Name: name},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "watch", Name: name},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "update", Name: name},
		{Group: rbac.CoreGroup, Resource: "pods", Verb: "get"},
		{Group: rbac.CoreGroup, Resource: "pods", Verb: "list"},
	}
}

// refusal says why the holder of l cannot act on a handoff request, or ""
// when it can. serverNow is the API server's time of l.
func refusal(l *coordinationv1.Lease, serverNow time.Time) string {
	v := judge(l, serverNow)
	id := fmt.Sprintf("Lease %s/%s", l.Namespace, l.Name)
	switch {
	case v.Holder == "":
		return fmt.Sprintf("%s has no holder (released): there is nothing to hand off; a candidate takes it by itself", id)
	case v.State == stateExpired:
		return fmt.Sprintf("%s is expired: %s has not written it for %s (lease duration %s), so it is not running and nobody would act on a request; any candidate may take the Lease",
			id, v.Holder, v.SinceRenewal.Round(time.Second), v.LeaseDuration)
	}
	m, present, current := markerOf(l)
	how := fmt.Sprintf("To move it anyway, delete %s's Pod: its successor takes over after %s releases the Lease or after the lease duration (%s).", v.Holder, v.Holder, durationCell(v.LeaseDuration))
	switch {
	case !present:
		return fmt.Sprintf("%s is held by %s, which does not act on handoff requests: the Lease has no elector marker (annotation %s), so its holder is a client-go (or other non-elector) candidate. Refusing instead of waiting. %s",
			id, v.Holder, annotationHolder, how)
	case !current && m.Identity == v.Holder && m.Token == int64(v.Token):
		return fmt.Sprintf("%s is held by %s, which does not act on handoff requests: the elector marker names %s with token %d, but the Lease was renewed since the marker was written (renewTime), so the last write was not an elector candidate's (a client-go holder keeps the annotations it read). Refusing instead of waiting. %s",
			id, v.Holder, orNone(m.Identity), m.Token, how)
	case !current:
		return fmt.Sprintf("%s is held by %s, which does not act on handoff requests: the elector marker names %s with token %d, but the Lease names %s with token %d, so the last write was not an elector candidate's (a client-go holder keeps the annotations it read). Refusing instead of waiting. %s",
			id, v.Holder, orNone(m.Identity), m.Token, v.Holder, v.Token, how)
	case !m.Handoff:
		return fmt.Sprintf("%s is held by %s, an elector %s that does not act on handoff requests; upgrade it. Refusing instead of waiting. %s",
			id, v.Holder, orNone(m.Version), how)
	}
	return ""
}

func (a *app) handoff(cmd *cobra.Command, name, to string, timeout time.Duration, force bool) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	n := need{namespace: ns, rules: handoffRules(name), role: "elector-handoff-" + name}
	leases := k.coordination.Leases(ns)

	// Write the request, with the resourceVersion read, re-reading on a
	// conflict (a renewal in between).
	var (
		old     string
		token   int32
		written *coordinationv1.Lease
		start   time.Time
	)
	for attempt := 0; ; attempt++ {
		l, err := a.getLease(cmd, k, ns, name, n)
		if err != nil {
			return err
		}
		if why := refusal(l, k.date.now()); why != "" {
			return fail(ExitCannotHandOff, "%s", why)
		}
		old, token = holderOf(l), tokenOf(l)
		if to != "" && to == old {
			fmt.Fprintf(a.stdout, "%s already leads %s/%s (token %d); nothing to do.\n", old, ns, name, token)
			return nil
		}
		if attempt == 0 && !force {
			if err := a.checkCandidates(ctx, k, l, to, n); err != nil {
				return err
			}
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		start = a.clock.Now()
		l.Annotations[annotationHandoffTo] = to
		l.Annotations[annotationHandoffRequestedAt] = start.UTC().Format(time.RFC3339Nano)
		written, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			break
		}
		if apierrors.IsConflict(err) && attempt < handoffRetries {
			continue
		}
		n.what = "write the handoff request on Lease " + ns + "/" + name
		return a.apiErr(ctx, err, n)
	}
	target := "anyone else"
	if to != "" {
		target = to
	}
	fmt.Fprintf(a.stderr, "Asked %s (token %d) to hand %s/%s to %s; waiting up to %s...\n", old, token, ns, name, target, timeout)

	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := handoffWait{old: old, to: to}
	done, err := a.waitLease(wctx, k, ns, name, written.ResourceVersion, func(l *coordinationv1.Lease) (bool, error) {
		return w.observe(l, a.clock.Now().Sub(start))
	})
	if done {
		now := holderOf(w.last)
		fmt.Fprintf(a.stdout, "%s leads %s/%s now, token %d (was %s, token %d); the handoff took %s.\n",
			now, ns, name, tokenOf(w.last), old, token, w.took.Round(time.Millisecond))
		return nil
	}
	var ee *exitError
	if err != nil && asExit(err, &ee) {
		a.withdraw(k, ns, name, old)
		return err
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		a.withdraw(k, ns, name, old)
		n.what = "watch Lease " + ns + "/" + name
		return a.apiErr(ctx, err, n)
	}
	withdrawn := a.withdraw(k, ns, name, old)
	if ctx.Err() != nil {
		return fail(ExitFailure, "interrupted while waiting for the handoff%s", withdrawn)
	}
	return fail(ExitTimeout, "%s%s", w.timeoutReason(timeout, k.date.now(), ns, name), withdrawn)
}

// handoffWait follows the Lease after a request until the new leader has
// taken over.
type handoffWait struct {
	old, to string
	// handedAt and releasedAt are when the old holder was seen writing
	// the Lease to the target, or releasing it (since the request).
	handedAt, releasedAt time.Duration
	last                 *coordinationv1.Lease
	took                 time.Duration
}

// observe takes the next version of the Lease, seen elapsed after the
// request was sent; it reports whether the handoff is complete, or an
// error that ends the wait.
func (w *handoffWait) observe(l *coordinationv1.Lease, elapsed time.Duration) (bool, error) {
	w.last = l
	holder := holderOf(l)
	_, pending := l.Annotations[annotationHandoffTo]
	m, _, current := markerOf(l)
	switch {
	case holder == w.old && w.releasedAt > 0:
		return false, fail(ExitTimeout, "%s released the Lease after %s but took it back itself (token %d) before another candidate took it; are other candidates running?",
			w.old, w.releasedAt.Round(time.Millisecond), tokenOf(l))
	case holder == w.old:
		if !pending {
			return false, fail(ExitTimeout, "the handoff request was removed from the Lease, but %s still leads (token %d)", w.old, tokenOf(l))
		}
		return false, nil
	case holder == "":
		if w.releasedAt == 0 {
			w.releasedAt = elapsed
		}
		return false, nil
	case w.to != "" && holder != w.to:
		return false, fail(ExitTimeout, "%s took the Lease (token %d), not the requested %s", holder, tokenOf(l), w.to)
	case w.to != "" && current && m.HandedBy != "":
		// Written by the old holder to the target; the target has not
		// taken it up yet.
		if w.handedAt == 0 {
			w.handedAt = elapsed
		}
		return false, nil
	}
	w.took = elapsed
	return true, nil
}

// timeoutReason says what was seen before the timeout.
func (w *handoffWait) timeoutReason(timeout time.Duration, serverNow time.Time, ns, name string) string {
	duration := "its lease duration"
	if w.last != nil {
		if v := judge(w.last, serverNow); v.LeaseDuration > 0 {
			duration = "its lease duration (" + v.LeaseDuration.String() + ")"
		}
	}
	switch {
	case w.handedAt > 0:
		return fmt.Sprintf("%s handed %s/%s to %s after %s, but %s did not take it up within %s: it may not be running. Any candidate may take the Lease after %s",
			w.old, ns, name, w.to, w.handedAt.Round(time.Millisecond), w.to, timeout, duration)
	case w.releasedAt > 0:
		return fmt.Sprintf("%s released %s/%s after %s, but no other candidate took it within %s", w.old, ns, name, w.releasedAt.Round(time.Millisecond), timeout)
	}
	return fmt.Sprintf("%s did not hand off %s/%s within %s (it stops its work before it writes the Lease; is the work slow to stop?)", w.old, ns, name, timeout)
}

// withdraw removes a request that is still pending on a Lease old still
// holds, so that it does not act on it later; it returns the note for
// the message.
func (a *app) withdraw(k *kube, ns, name, old string) string {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	leases := k.coordination.Leases(ns)
	for attempt := 0; attempt < handoffRetries; attempt++ {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Sprintf("; unable to withdraw the request: %s", oneLine(err))
		}
		if _, ok := l.Annotations[annotationHandoffTo]; !ok || holderOf(l) != old {
			return ""
		}
		delete(l.Annotations, annotationHandoffTo)
		delete(l.Annotations, annotationHandoffRequestedAt)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			return "; the request was withdrawn"
		}
		if !apierrors.IsConflict(err) {
			return fmt.Sprintf("; unable to withdraw the request (remove the annotation %s yourself): %s", annotationHandoffTo, oneLine(err))
		}
	}
	return fmt.Sprintf("; unable to withdraw the request (remove the annotation %s yourself)", annotationHandoffTo)
}

// waitLease watches Lease name from resourceVersion rv and passes every
// new version to f until f reports done or an error, or ctx ends. It
// re-watches from the last version seen when the API server ends a watch.
func (a *app) waitLease(ctx context.Context, k *kube, ns, name, rv string, f func(*coordinationv1.Lease) (bool, error)) (bool, error) {
	leases := k.coordination.Leases(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		wi, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, err
		}
		done, next, err := drain(ctx, wi, f)
		wi.Stop()
		if done || err != nil {
			return done, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if next != "" {
			rv = next
		}
	}
}

// drain reads one watch until f is done, the watch ends, or ctx ends; it
// returns the last resourceVersion seen.
func drain(ctx context.Context, wi watch.Interface, f func(*coordinationv1.Lease) (bool, error)) (done bool, rv string, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, rv, ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return false, rv, nil
			}
			switch ev.Type {
			case watch.Error:
				st := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(st) || apierrors.IsGone(st) {
					return false, "", nil // re-watch from now
				}
				return false, rv, st
			case watch.Deleted:
				return false, rv, fail(ExitFailure, "the Lease was deleted while waiting")
			}
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok {
				continue
			}
			rv = l.ResourceVersion
			if ev.Type == watch.Bookmark {
				continue
			}
			if done, err := f(l); done || err != nil {
				return done, rv, err
			}
		}
	}
}
