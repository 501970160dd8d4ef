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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector/shard"
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
	var selector string
	var flapWindow time.Duration
	var flapChanges int
	cmd := &cobra.Command{
		Use:   "watch [NAME|GROUP] [-A] [-l SELECTOR]",
		Short: "Stream changes of holder as they happen, with the gaps between tenures and anomalies",
		Long: `Watch the Lease NAME (or every election Lease of the namespace, or of all
namespaces with -A) and print each change as it is seen: a new holder, a
release, a handoff request and its outcome, with the gap between the end of
one tenure and the start of the next. Anomalies are marked ANOMALY: a holder
that stopped renewing with no successor (expired), a released Lease nobody
takes, a holder that flaps (--flap-changes changes within --flap-window).

The Leases of a sharded group (package shard, or the sidecar's --shards) are
reported under the group's name, and NAME may be a group's name (when no
Lease of that name exists): members that join and leave (a member Lease
released on scale-down is not an anomaly; one that stops renewing is), the
coordinator's election, and each new generation of the assignment.

Times are this machine's clock when the change was seen, and expiry is
judged the way candidates judge it: a lease duration after the last write
seen, on this clock alone, never against a time another host wrote.`,
		Example: `  kubectl elector watch my-controller -n team-a
  kubectl elector watch workers -n team-a     # a sharded group, by its name
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
			if selector != "" {
				if _, err := labels.Parse(selector); err != nil {
					return usageErr(cmd, "-l %q: %s", selector, oneLine(err))
				}
			}
			if flapChanges < 2 || flapWindow <= 0 {
				return usageErr(cmd, "--flap-changes=%d --flap-window=%s: want at least 2 changes and a positive window", flapChanges, flapWindow)
			}
			t := newTracker(flapWindow, flapChanges, renewals)
			return a.watch(cmd, name, selector, allNamespaces, allKinds, t)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "watch the Leases of every namespace")
	cmd.Flags().BoolVar(&allKinds, "all-kinds", false, "include node heartbeats and kube-apiserver identity Leases")
	cmd.Flags().BoolVar(&renewals, "renewals", false, "print every renewal too")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector on the Leases, as kubectl's -l")
	cmd.Flags().DurationVar(&flapWindow, "flap-window", defaultFlapWindow, "the window in which --flap-changes changes of holder are flapping")
	cmd.Flags().IntVar(&flapChanges, "flap-changes", defaultFlapChanges, "changes of holder within --flap-window that are flapping")
	return cmd
}

func (a *app) watch(cmd *cobra.Command, name, selector string, allNamespaces, allKinds bool, t *tracker) error {
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
	opts := metav1.ListOptions{LabelSelector: selector}
	n := need{namespace: ns, role: viewerRole, what: "watch Leases", rules: viewerRules()}
	group := false
	if name != "" {
		if group, err = a.isGroup(ctx, k, ns, name); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return a.apiErr(ctx, err, n)
		}
		if group {
			// A sharded group's Leases all carry its name in LabelGroup:
			// watch them all, reported under the group's name.
			opts.LabelSelector = groupSelector(selector, name)
		} else {
			opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}
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
			switch {
			case name != "" && len(list.Items) == 0 && group:
				print([]string{t.line(a.clock.Now(), ns+"/"+name, "the sharded group has no Leases now; waiting for them")})
			case name != "" && len(list.Items) == 0:
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

// isGroup reports whether NAME names a sharded group rather than a Lease:
// no Lease NAME exists, and Leases labeled with group NAME do. A Lease
// named like a group keeps its meaning (watch NAME watched it before
// groups were reported), and a name that is neither, or that this user
// may not look up as a group, is waited for as a Lease.
func (a *app) isGroup(ctx context.Context, k *kube, ns, name string) (bool, error) {
	leases := k.coordination.Leases(ns)
	_, err := leases.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsForbidden(err):
		return false, nil // the watch of the Lease names what is missing
	case !apierrors.IsNotFound(err):
		return false, err
	}
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: groupSelector("", name), Limit: 1})
	switch {
	case apierrors.IsForbidden(err):
		return false, nil // allowed to watch the Lease NAME only: it is a Lease
	case err != nil:
		return false, err
	}
	return len(list.Items) > 0, nil
}

// groupSelector is the user's -l selector, if any, and the Leases of the
// sharded group.
func groupSelector(selector, group string) string {
	s := shard.LabelGroup + "=" + group
	if selector != "" {
		s = selector + "," + s
	}
	return s
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
	// display is the key the lines name: ns/name, or ns/GROUP for the
	// Leases of a sharded group, whose lines start with prefix
	// ("coordinator: "). role is the shard role ("" for an election).
	display, prefix, role string
	// generation is an assignment's last generation seen.
	generation int64
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
	display, prefix, role := key, "", ""
	if g, r, ok := shardPart(l); ok {
		display, role = l.Namespace+"/"+g, r
		switch r {
		case shard.RoleMember:
			return t.observeMember(now, typ, key, display, l)
		case shard.RoleAssignment:
			return t.observeAssignment(now, typ, key, display, l)
		}
		prefix = "coordinator: "
	}
	var out []string
	say := func(format string, args ...any) {
		out = append(out, t.line(now, display, prefix+fmt.Sprintf(format, args...)))
	}

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
		tr := &leaseTrack{
			holder: holder, token: token, renewTime: renew, duration: dur, request: request, lastWrite: now,
			display: display, prefix: prefix, role: role,
		}
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
	if !ok || tr.anomaly || v.State != stateExpired || tr.role == shard.RoleAssignment {
		return nil
	}
	tr.anomaly = true
	if tr.role == shard.RoleMember {
		return []string{t.line(now, tr.display, fmt.Sprintf(
			"ANOMALY member %s expired: it has not written its member Lease %s for %s by the API server's clock (lease %s); the coordinator fences it and moves its shards",
			v.Holder, v.Name, v.SinceRenewal.Round(time.Second), v.LeaseDuration))}
	}
	return []string{t.line(now, tr.display, tr.prefix+fmt.Sprintf(
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
		switch {
		case tr.role == shard.RoleMember && tr.holder == "":
			// A member that left: scale-down, not an anomaly.
			continue
		case tr.role == shard.RoleCoordinator && tr.holder == "" && !t.groupHasMember(tr.display):
			// The whole group stopped: nobody is expected to coordinate.
			continue
		}
		tr.anomaly = true
		say := func(format string, args ...any) {
			out = append(out, t.line(now, tr.display, tr.prefix+fmt.Sprintf(format, args...)))
		}
		switch {
		case tr.role == shard.RoleMember:
			say("ANOMALY member %s has not renewed its member Lease %s for %s (lease %s); the coordinator fences it and moves its shards",
				tr.holder, strings.TrimPrefix(key, namespaceOf(tr.display)+"/"), ms(quiet), tr.duration)
		case tr.holder == "":
			say("ANOMALY released %s ago and no candidate has taken it", ms(quiet))
		case tr.handedBy != "":
			say("ANOMALY %s handed the Lease to %s %s ago, which has not taken it up (not running?); any candidate may take it now", tr.handedBy, tr.holder, ms(quiet))
		default:
			say("ANOMALY expired: %s has not renewed for %s (lease %s) and no successor has taken over", tr.holder, ms(quiet), tr.duration)
		}
	}
	sort.Strings(out)
	return out
}

// groupHasMember reports whether the sharded group shown as display has
// a member Lease with a holder.
func (t *tracker) groupHasMember(display string) bool {
	for _, tr := range t.leases {
		if tr.role == shard.RoleMember && tr.display == display && tr.holder != "" {
			return true
		}
	}
	return false
}

// namespaceOf is the namespace part of ns/name.
func namespaceOf(key string) string {
	ns, _, _ := strings.Cut(key, "/")
	return ns
}

// observeMember takes a version of a member Lease of a sharded group: a
// member joins (the Lease gets a holder) or leaves (it is released, on
// scale-down, or fenced after it expired). Lines name the group.
func (t *tracker) observeMember(now time.Time, typ watch.EventType, key, display string, l *coordinationv1.Lease) []string {
	var out []string
	say := func(format string, args ...any) {
		out = append(out, t.line(now, display, fmt.Sprintf(format, args...)))
	}
	prev, seen := t.leases[key]
	if typ == watch.Deleted {
		delete(t.leases, key)
		if seen && prev.holder != "" {
			say("member %s left: its member Lease %s was deleted", prev.holder, l.Name)
		}
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
	if !seen {
		t.leases[key] = &leaseTrack{
			holder: holder, token: token, renewTime: renew, duration: dur, lastWrite: now,
			display: display, role: shard.RoleMember,
		}
		if holder != "" {
			say("member %s is in (epoch %d)", holder, token)
		}
		return out
	}
	wrote := renew != prev.renewTime || holder != prev.holder || token != prev.token
	quiet := now.Sub(prev.lastWrite)
	switch {
	case holder != prev.holder && holder == "" && prev.anomaly:
		say("member %s is out: its member Lease was fenced after it expired (epoch %d)", prev.holder, token)
	case holder != prev.holder && holder == "":
		say("member %s left: it released its member Lease (epoch %d)", prev.holder, token)
	case holder != prev.holder && prev.holder != "":
		say("member %s left and %s joined on member Lease %s (epoch %d)", prev.holder, holder, l.Name, token)
	case holder != prev.holder:
		say("member %s joined (epoch %d)", holder, token)
	case wrote && token != prev.token:
		say("member %s joined again (epoch %d)", holder, token)
	case wrote && prev.anomaly && holder != "":
		say("member %s renewed again after %s without renewing (epoch %d)", holder, ms(quiet), token)
	case wrote && t.renewals && holder != "":
		say("member %s renewed (epoch %d), %s after the last write", holder, token, ms(quiet))
	}
	prev.holder, prev.token, prev.renewTime, prev.duration = holder, token, renew, dur
	if wrote {
		prev.lastWrite = now
		prev.anomaly = false
	}
	return out
}

// observeAssignment takes a version of a group's assignment Lease: it
// prints each new generation of the table, member by member.
func (t *tracker) observeAssignment(now time.Time, typ watch.EventType, key, display string, l *coordinationv1.Lease) []string {
	say := func(format string, args ...any) []string {
		return []string{t.line(now, display, fmt.Sprintf(format, args...))}
	}
	prev, seen := t.leases[key]
	if typ == watch.Deleted {
		delete(t.leases, key)
		return say("assignment Lease %s deleted", l.Name)
	}
	tab, err := shard.TableOf(l)
	if err != nil {
		return say("ANOMALY %s", oneLine(err))
	}
	if !seen {
		prev = &leaseTrack{display: display, role: shard.RoleAssignment, generation: -1}
		t.leases[key] = prev
	}
	if tab.Generation == prev.generation {
		return nil
	}
	prev.generation = tab.Generation
	return say("assignment generation %d of %d shards: %s", tab.Generation, len(tab.Shards), describeTable(tab))
}

// describeTable renders an assignment as "a 0,2,4; b 1,3,5", with
// unowned shards and pending handoffs.
func describeTable(tab shard.Table) string {
	owned := map[string][]string{}
	var unowned, handoffs []string
	for i, s := range tab.Shards {
		if s.Owner == "" {
			unowned = append(unowned, strconv.Itoa(i))
		} else {
			owned[s.Owner] = append(owned[s.Owner], strconv.Itoa(i))
		}
		if s.HandoffTo != "" {
			handoffs = append(handoffs, fmt.Sprintf("%d to %s", i, s.HandoffTo))
		}
	}
	owners := make([]string, 0, len(owned))
	for o := range owned {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	var parts []string
	for _, o := range owners {
		parts = append(parts, o+" "+strings.Join(owned[o], ","))
	}
	if len(unowned) > 0 {
		parts = append(parts, "unowned "+strings.Join(unowned, ","))
	}
	if len(handoffs) > 0 {
		parts = append(parts, "handing off "+strings.Join(handoffs, ", "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
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
