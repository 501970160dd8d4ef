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
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
)

// timelineWidth is the width of a tenure bar, in characters.
const timelineWidth = 40

func (a *app) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show one Lease in detail, with its recent holders as a timeline",
		Long: `Show the Lease NAME in detail (holder, state, token, tenure, a pending handoff
request) and its recent holders, from the Events on the Lease: elector's
BecameLeader, StoppedLeading and HandedOff, and client-go's LeaderElection.
The API server keeps Events for about an hour (kube-apiserver --event-ttl,
1h by default), so older tenures do not appear. Event times are the clocks of
the hosts that wrote them.`,
		Example: `  kubectl elector status my-controller -n team-a`,
		Args:    exactArgs(1, "the Lease NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.status(cmd, args[0])
		},
	}
	return cmd
}

func (a *app) status(cmd *cobra.Command, name string) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	rules := viewerRules()
	l, err := a.getLease(cmd, k, ns, name, need{namespace: ns, rules: rules, role: viewerRole})
	if err != nil {
		return err
	}
	now := k.date.now()
	if now.IsZero() {
		now = a.clock.Now()
	}
	v := judge(l, now)
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", "Lease"),
		fields.OneTermEqualSelector("involvedObject.name", name),
	).String()
	evs, err := k.core.Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return a.apiErr(ctx, err, need{namespace: ns, rules: rules, role: viewerRole, what: "list the Events of Lease " + name})
	}
	var hist []historyEvent
	for i := range evs.Items {
		if h, ok := parseEvent(&evs.Items[i]); ok {
			hist = append(hist, h)
		}
	}
	_, err = io.WriteString(a.stdout, renderStatus(v, hist, now))
	return err
}

// historyEvent is one change of leadership read from an Event.
type historyEvent struct {
	Time     time.Time
	Reason   string
	Identity string
	Token    int32 // -1 when the message has none (client-go's)
	Target   string
	Message  string
}

// Kinds of history events, from the reason and the message.
const (
	kindBecame   = "became"
	kindStopped  = "stopped"
	kindHanded   = "handed"
	kindReleased = "released"
)

var (
	tokenRE   = regexp.MustCompile(`\(token (\d+)\)`)
	handedRE  = regexp.MustCompile(`^(.+?) handed off to (.+?) \(token \d+\)`)
	messageRE = regexp.MustCompile(`^(.+?) (became leader|stopped leading|released the lease)`)
)

// parseEvent reads a leadership Event: elector's (reasons BecameLeader,
// StoppedLeading, HandedOff; messages "ID became leader (token N)", "ID
// stopped leading (token N): why", "ID handed off to T (token N)", "ID
// released the lease to anyone else (token N)") or client-go's (reason
// LeaderElection, "ID became leader", "ID stopped leading").
func parseEvent(e *corev1.Event) (historyEvent, bool) {
	switch e.Reason {
	case reasonBecameLeader, reasonStoppedLeading, reasonHandedOff, reasonClientGo:
	default:
		return historyEvent{}, false
	}
	h := historyEvent{Time: eventTime(e), Reason: e.Reason, Token: -1, Message: e.Message}
	if m := tokenRE.FindStringSubmatch(e.Message); m != nil {
		if n, err := strconv.ParseInt(m[1], 10, 32); err == nil {
			h.Token = int32(n)
		}
	}
	if m := handedRE.FindStringSubmatch(e.Message); m != nil {
		h.Identity, h.Target = m[1], m[2]
	} else if m := messageRE.FindStringSubmatch(e.Message); m != nil {
		h.Identity = m[1]
	} else {
		h.Identity = e.ReportingInstance
	}
	return h, h.Identity != ""
}

// kind classifies h.
func (h historyEvent) kind() string {
	switch {
	case h.Target != "":
		return kindHanded
	case strings.Contains(h.Message, " released the lease"):
		return kindReleased
	case h.Reason == reasonBecameLeader || strings.Contains(h.Message, " became leader"):
		return kindBecame
	}
	return kindStopped
}

// eventTime is when the Event happened, as precisely as it says: Events
// store whole seconds, but client-go's recorder and the sidecar name an
// Event "<object>.<UnixNano in hex>", so the name gives nanoseconds when
// it agrees with the timestamp.
func eventTime(e *corev1.Event) time.Time {
	t := e.LastTimestamp.Time
	if !e.EventTime.IsZero() {
		t = e.EventTime.Time
	}
	if t.IsZero() {
		t = e.FirstTimestamp.Time
	}
	if t.IsZero() {
		t = e.CreationTimestamp.Time
	}
	if i := strings.LastIndexByte(e.Name, '.'); i >= 0 {
		if n, err := strconv.ParseInt(e.Name[i+1:], 16, 64); err == nil {
			precise := time.Unix(0, n)
			if d := precise.Sub(t); t.IsZero() || (d > -time.Second && d < time.Second) {
				return precise
			}
		}
	}
	return t
}

// tenure is one holder's time with the Lease, as the Events tell it.
type tenure struct {
	Identity   string
	Token      int32
	Start, End time.Time
	Open       bool // still leading (the Lease's holder now)
}

// tenures pairs each "became leader" with the next end of that holder's
// tenure: its own stop, handoff or release, or another holder's start.
func tenures(hist []historyEvent, holder string, now time.Time) []tenure {
	var out []tenure
	open := -1
	for _, h := range hist {
		switch h.kind() {
		case kindBecame:
			if open >= 0 {
				out[open].End = h.Time
			}
			out = append(out, tenure{Identity: h.Identity, Token: h.Token, Start: h.Time})
			open = len(out) - 1
		default:
			if open >= 0 && out[open].Identity == h.Identity {
				out[open].End = h.Time
				open = -1
			}
		}
	}
	if open >= 0 {
		if out[open].Identity == holder {
			out[open].End, out[open].Open = now, true
		} else {
			out[open].End = out[open].Start // its end is not recorded
		}
	}
	return out
}

// renderStatus renders the detail of v and the history.
func renderStatus(v view, hist []historyEvent, now time.Time) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "Lease:\t%s/%s\n", v.Namespace, v.Name)
	fmt.Fprintf(w, "Holder:\t%s\n", holderLine(v))
	fmt.Fprintf(w, "State:\t%s\n", stateLine(v))
	fmt.Fprintf(w, "Token:\t%d (spec.leaseTransitions; grows on every change of holder)\n", v.Token)
	if v.TenureKnown {
		fmt.Fprintf(w, "Tenure:\t%s (since acquireTime %s, on the holder's clock)\n", duration.HumanDuration(v.Tenure), timeCell(v.AcquireTime))
	}
	if v.RenewTime != nil {
		fmt.Fprintf(w, "Renew time:\t%s (on the holder's clock)\n", timeCell(v.RenewTime))
	}
	fmt.Fprintf(w, "Lease duration:\t%s\n", durationCell(v.LeaseDuration))
	switch {
	case v.HandoffTo == nil:
		fmt.Fprintf(w, "Handoff request:\t<none>\n")
	case *v.HandoffTo == "":
		fmt.Fprintf(w, "Handoff request:\tpending, to anyone else\n")
	default:
		fmt.Fprintf(w, "Handoff request:\tpending, to %s\n", *v.HandoffTo)
	}
	if v.PreferredHolder != "" || v.Strategy != "" {
		fmt.Fprintf(w, "Preferred holder:\t%s (strategy %s)\n", orNone(v.PreferredHolder), orNone(v.Strategy))
	}
	w.Flush()

	b.WriteString("\nRecent holders, from the Events on the Lease (the API server keeps Events for\nabout an hour; times are the clocks of the hosts that wrote them):\n")
	if len(hist) == 0 {
		b.WriteString("\n  No leadership Events. elector's sidecar writes them (--events, on by\n  default); client-go writes them when given an EventRecorder.\n")
		return b.String()
	}
	sort.SliceStable(hist, func(i, j int) bool { return hist[i].Time.Before(hist[j].Time) })
	b.WriteString("\n")
	w = tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "  TIME (UTC)\tHOLDER\tEVENT")
	for _, h := range hist {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", h.Time.UTC().Format("15:04:05.000"), h.Identity, eventText(h))
	}
	w.Flush()

	ts := tenures(hist, v.Holder, now)
	if len(ts) == 0 {
		return b.String()
	}
	from := ts[0].Start
	span := now.Sub(from)
	if span <= 0 {
		span = time.Second
	}
	fmt.Fprintf(&b, "\nTenures from %s to now (%s; one mark is %s):\n\n", from.UTC().Format("15:04:05"),
		duration.HumanDuration(span), (span / timelineWidth).Round(time.Millisecond))
	w = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, t := range ts {
		start := int(float64(timelineWidth) * float64(t.Start.Sub(from)) / float64(span))
		end := int(float64(timelineWidth) * float64(t.End.Sub(from)) / float64(span))
		start, end = clamp(start, 0, timelineWidth-1), clamp(end, 0, timelineWidth)
		if end <= start {
			end = start + 1
		}
		bar := strings.Repeat(" ", start) + strings.Repeat("█", end-start) + strings.Repeat(" ", timelineWidth-end)
		token := "token ?"
		if t.Token >= 0 {
			token = fmt.Sprintf("token %d", t.Token)
		}
		length := duration.HumanDuration(t.End.Sub(t.Start))
		switch {
		case t.Open:
			length += ", leads now"
		case t.End.Equal(t.Start):
			length = "end not recorded"
		}
		fmt.Fprintf(w, "  %s\t|%s|\t%s\t%s\n", t.Identity, bar, token, length)
	}
	w.Flush()
	return b.String()
}

func clamp(n, lo, hi int) int { return min(max(n, lo), hi) }

func eventText(h historyEvent) string {
	token := ""
	if h.Token >= 0 {
		token = fmt.Sprintf(", token %d", h.Token)
	}
	switch h.kind() {
	case kindBecame:
		return "became leader" + token
	case kindHanded:
		return "handed off to " + h.Target + token
	case kindReleased:
		return "released the Lease to anyone else" + token
	}
	s := "stopped leading" + token
	if _, why, ok := strings.Cut(h.Message, "): "); ok {
		s += ": " + why
	}
	return s
}

func holderLine(v view) string {
	switch {
	case v.Holder == "":
		return "<none> (released)"
	case v.Type == typeElector && v.CanHandOff:
		return fmt.Sprintf("%s (elector %s; acts on handoff requests)", v.Holder, orNone(v.ElectorVersion))
	case v.Type == typeElector:
		return fmt.Sprintf("%s (elector %s, without handoff)", v.Holder, orNone(v.ElectorVersion))
	case v.Type == typeClientGo:
		return fmt.Sprintf("%s (client-go or compatible: no current elector marker; cannot hand off)", v.Holder)
	}
	return fmt.Sprintf("%s (%s Lease)", v.Holder, v.Type)
}

func stateLine(v view) string {
	since := ""
	switch v.RenewalBasis {
	case basisServer:
		since = fmt.Sprintf("last written %s ago by the API server's clock", duration.HumanDuration(v.SinceRenewal))
	case basisHolder:
		since = fmt.Sprintf("renewed about %s ago (renewTime, the holder's clock: this Lease has no managedFields)", duration.HumanDuration(v.SinceRenewal))
	}
	switch v.State {
	case stateReleased:
		if since != "" {
			return "released: no holder; " + since
		}
		return "released: no holder"
	case stateExpired:
		return fmt.Sprintf("expired: %s, longer than the lease duration (%s); any candidate may take it", since, v.LeaseDuration)
	case stateHeld:
		return fmt.Sprintf("held: %s (lease duration %s)", since, v.LeaseDuration)
	}
	return "unknown: the Lease has no leaseDurationSeconds or renewal time to judge by"
}
