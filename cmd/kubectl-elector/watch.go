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
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	// defaultFlapWindow and defaultFlapChanges: a holder that changes
	// this often is flapping. A healthy election changes holder on a
	// rollout (one change per replica, minutes apart) or a handoff; four
	// changes within a minute is a leader that cannot keep the Lease.
	defaultFlapWindow  = time.Minute
	defaultFlapChanges = 4
	// tickInterval is how often expiry is checked between changes: well
	// below any lease duration (1s at least).
	tickInterval = 100 * time.Millisecond
)

func (a *app) watchCommand() *cobra.Command {
	var allNamespaces, allKinds, renewals bool
	var flapWindow time.Duration
	var flapChanges int
	cmd := &cobra.Command{
		Use:   "watch [NAME] [-A]",
		Short: "Stream changes of holder as they happen, with the gaps between tenures and anomalies",
		Long: `Watch the Lease NAME (or every election Lease of the namespace, or of all
namespaces with -A) and print each change as it is seen: a new holder, a
release, a handoff request and its outcome, with the gap between the end of
one tenure and the start of the next. Anomalies are marked ANOMALY: a holder
that stopped renewing with no successor (expired), a released Lease nobody
takes, a holder that flaps (--flap-changes changes within --flap-window).

Times are this machine's clock when the change was seen, and expiry is
judged the way candidates judge it: a lease duration after the last write
seen, on this clock alone, never against a time another host wrote.`,
		Example: `  kubectl elector watch my-controller -n team-a
  kubectl elector watch -A`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if name != "" && allNamespaces {
				return usageErr(cmd, "NAME and -A exclude each other: a Lease name is per namespace")
			}
			if flapChanges < 2 || flapWindow <= 0 {
				return usageErr(cmd, "--flap-changes=%d --flap-window=%s: want at least 2 changes and a positive window", flapChanges, flapWindow)
			}
			t := newTracker(flapWindow, flapChanges, renewals)
			return a.watch(cmd, name, allNamespaces, allKinds, t)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "watch the Leases of every namespace")
	cmd.Flags().BoolVar(&allKinds, "all-kinds", false, "include node heartbeats and kube-apiserver identity Leases")
	cmd.Flags().BoolVar(&renewals, "renewals", false, "print every renewal too")
	cmd.Flags().DurationVar(&flapWindow, "flap-window", defaultFlapWindow, "the window in which --flap-changes changes of holder are flapping")
	cmd.Flags().IntVar(&flapChanges, "flap-changes", defaultFlapChanges, "changes of holder within --flap-window that are flapping")
	return cmd
}

func (a *app) watch(cmd *cobra.Command, name string, allNamespaces, allKinds bool, t *tracker) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns := metav1.NamespaceAll
	if !allNamespaces {
		if ns, err = a.namespace(); err != nil {
			return err
		}
	}
	opts := metav1.ListOptions{}
	n := need{namespace: ns, role: viewerRole, what: "watch Leases", rules: viewerRules()}
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	leases := k.coordination.Leases(ns)
	keep := func(l *coordinationv1.Lease) bool { return allKinds || name != "" || !isHeartbeat(l) }
	print := func(lines []string) {
		for _, l := range lines {
			fmt.Fprintln(a.stdout, l)
		}
	}

	ticker := a.clock.NewTicker(tickInterval)
	defer ticker.Stop()
	rv := ""
	for {
		if rv == "" {
			list, err := leases.List(ctx, opts)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return a.apiErr(ctx, err, n)
			}
			if name != "" && len(list.Items) == 0 {
				print([]string{t.line(a.clock.Now(), ns+"/"+name, "no such Lease yet; waiting for it")})
			}
			serverNow := k.date.now()
			for i := range list.Items {
				if l := &list.Items[i]; keep(l) {
					print(t.observe(a.clock.Now(), watch.Added, l))
					print(t.judgeListed(a.clock.Now(), judge(l, serverNow)))
				}
			}
			rv = list.ResourceVersion
		}
		wopts := opts
		wopts.ResourceVersion = rv
		wopts.AllowWatchBookmarks = true
		wi, err := leases.Watch(ctx, wopts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return a.apiErr(ctx, err, n)
		}
		rv, err = a.follow(ctx, wi, t, keep, ticker.C(), print, rv)
		wi.Stop()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return a.apiErr(ctx, err, n)
		}
	}
}

// follow prints what one watch shows until it ends; it returns the
// resourceVersion to resume from ("" to list again).
func (a *app) follow(ctx context.Context, wi watch.Interface, t *tracker, keep func(*coordinationv1.Lease) bool,
	tick <-chan time.Time, print func([]string), rv string,
) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case <-tick:
			print(t.tick(a.clock.Now()))
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return rv, nil
			}
			if ev.Type == watch.Error {
				st := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(st) || apierrors.IsGone(st) {
					return "", nil
				}
				return rv, st
			}
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok {
				continue
			}
			rv = l.ResourceVersion
			if ev.Type == watch.Bookmark || !keep(l) {
				continue
			}
			print(t.observe(a.clock.Now(), ev.Type, l))
		}
	}
}

// tracker turns the versions of Leases seen into lines: changes of
// holder, the gaps between tenures, handoff requests, and anomalies. It
// judges time only by the times passed to it: when this process saw each
// version.
type tracker struct {
	flapWindow  time.Duration
	flapChanges int
	renewals    bool
	leases      map[string]*leaseTrack
}

// leaseTrack is what the tracker knows of one Lease.
type leaseTrack struct {
	holder    string
	token     int32
	renewTime string // spec.renewTime as written: a change is a write
	duration  time.Duration
	request   *string
	// lastWrite is when the last write of the spec was seen.
	lastWrite time.Time
	// anomaly is set once the current quiet spell has been reported.
	anomaly bool
	// changes are the times of recent changes of holder.
	changes  []time.Time
	holders  []string
	flapTill time.Time
	// handedBy is the old holder of a transfer not yet taken up.
	handedBy string
}

func newTracker(flapWindow time.Duration, flapChanges int, renewals bool) *tracker {
	return &tracker{flapWindow: flapWindow, flapChanges: flapChanges, renewals: renewals, leases: map[string]*leaseTrack{}}
}

// line formats one output line.
func (t *tracker) line(now time.Time, key, msg string) string {
	return now.UTC().Format("15:04:05.000") + "  " + key + "  " + msg
}

// observe takes a version of a Lease seen at now.
func (t *tracker) observe(now time.Time, typ watch.EventType, l *coordinationv1.Lease) []string {
	key := l.Namespace + "/" + l.Name
	var out []string
	say := func(format string, args ...any) { out = append(out, t.line(now, key, fmt.Sprintf(format, args...))) }

	if typ == watch.Deleted {
		delete(t.leases, key)
		say("Lease deleted")
		return out
	}
	holder, token := holderOf(l), tokenOf(l)
	renew := ""
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	var dur time.Duration
	if s := l.Spec.LeaseDurationSeconds; s != nil {
		dur = time.Duration(*s) * time.Second
	}
	var request *string
	if to, ok := l.Annotations[annotationHandoffTo]; ok {
		request = &to
	}
	m, _, current := markerOf(l)
	typeName := typeOf(l)

	prev, seen := t.leases[key]
	if !seen {
		tr := &leaseTrack{holder: holder, token: token, renewTime: renew, duration: dur, request: request, lastWrite: now}
		t.leases[key] = tr
		if holder == "" {
			say("released (token %d), lease %s", token, durationCell(dur))
		} else {
			say("%s holds it (token %d, %s), lease %s", holder, token, typeName, durationCell(dur))
		}
		if request != nil {
			say("handoff requested %s, pending", requestText(*request))
		}
		return out
	}

	wrote := renew != prev.renewTime || holder != prev.holder || token != prev.token
	quiet := now.Sub(prev.lastWrite)
	switch {
	case holder != prev.holder && holder == "":
		say("%s released it (token %d)", prev.holder, token)
		prev.handedBy = ""
	case holder != prev.holder && current && m.HandedBy == prev.holder && m.HandedBy != "":
		say("%s handed off to %s (token %d)", prev.holder, holder, token)
		prev.handedBy = prev.holder
		t.noteChange(prev, now, holder, say)
	case holder != prev.holder:
		from := "after the release"
		if prev.holder != "" {
			from = "from " + prev.holder
			if prev.anomaly {
				from += ", which had expired"
			}
		}
		say("%s took over %s (token %d); gap %s since the last write", holder, from, token, ms(quiet))
		prev.handedBy = ""
		t.noteChange(prev, now, holder, say)
	case wrote && prev.handedBy != "" && !(current && m.HandedBy != ""):
		say("%s took up the Lease %s after %s handed it over (token %d)", holder, ms(quiet), prev.handedBy, token)
		prev.handedBy = ""
	case wrote && prev.anomaly && holder != "":
		say("%s renewed again after %s without renewing (token %d)", holder, ms(quiet), token)
	case wrote && t.renewals:
		say("%s renewed (token %d), %s after the last write", orNone(holder), token, ms(quiet))
	}
	switch {
	case request != nil && prev.request == nil:
		say("handoff requested %s", requestText(*request))
	case request == nil && prev.request != nil && holder == prev.holder && !wrote:
		say("handoff request withdrawn")
	}
	prev.holder, prev.token, prev.renewTime, prev.duration, prev.request = holder, token, renew, dur, request
	if wrote {
		prev.lastWrite = now
		prev.anomaly = false
	}
	return out
}

// judgeListed reports a Lease that was already expired when it was
// listed: this process has seen no write yet, so it takes the API
// server's judgement (see judge) instead of waiting a lease duration.
func (t *tracker) judgeListed(now time.Time, v view) []string {
	tr, ok := t.leases[v.Namespace+"/"+v.Name]
	if !ok || tr.anomaly || v.State != stateExpired {
		return nil
	}
	tr.anomaly = true
	return []string{t.line(now, v.Namespace+"/"+v.Name, fmt.Sprintf(
		"ANOMALY expired: %s has not written it for %s by the API server's clock (lease %s) and no successor has taken over",
		v.Holder, v.SinceRenewal.Round(time.Second), v.LeaseDuration))}
}

// noteChange records a change of holder and reports flapping.
func (t *tracker) noteChange(tr *leaseTrack, now time.Time, holder string, say func(string, ...any)) {
	cut := 0
	for cut < len(tr.changes) && now.Sub(tr.changes[cut]) > t.flapWindow {
		cut++
	}
	tr.changes = append(tr.changes[cut:], now)
	tr.holders = append(tr.holders[cut:], holder)
	if len(tr.changes) >= t.flapChanges && !now.Before(tr.flapTill) {
		say("ANOMALY flapping: %d changes of holder within %s (%s)", len(tr.changes), t.flapWindow, strings.Join(tr.holders, " -> "))
		tr.flapTill = now.Add(t.flapWindow)
	}
}

// tick reports the Leases that have gone quiet for longer than their
// duration since the last write seen.
func (t *tracker) tick(now time.Time) []string {
	var out []string
	for key, tr := range t.leases {
		if tr.anomaly || tr.duration <= 0 {
			continue
		}
		quiet := now.Sub(tr.lastWrite)
		if quiet <= tr.duration {
			continue
		}
		tr.anomaly = true
		switch {
		case tr.holder == "":
			out = append(out, t.line(now, key, fmt.Sprintf("ANOMALY released %s ago and no candidate has taken it", ms(quiet))))
		case tr.handedBy != "":
			out = append(out, t.line(now, key, fmt.Sprintf("ANOMALY %s handed the Lease to %s %s ago, which has not taken it up (not running?); any candidate may take it now", tr.handedBy, tr.holder, ms(quiet))))
		default:
			out = append(out, t.line(now, key, fmt.Sprintf("ANOMALY expired: %s has not renewed for %s (lease %s) and no successor has taken over", tr.holder, ms(quiet), tr.duration)))
		}
	}
	return out
}

func requestText(to string) string {
	if to == "" {
		return "to anyone else"
	}
	return "to " + to
}

// ms renders d with millisecond precision.
func ms(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}
