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
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector/internal/rbac"
)

// viewerRole names the Role printed when list, status or watch are denied.
const viewerRole = "elector-viewer"

// viewerRules are what list, status and watch need, together, so that
// the one Role printed for any of them serves all three: read Leases
// (names are not known in advance) and list the Events on them.
func viewerRules() []rbac.Rule {
	return []rbac.Rule{
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "get"},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "list"},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "watch"},
		{Group: rbac.CoreGroup, Resource: "events", Verb: "list"},
	}
}

func (a *app) listCommand() *cobra.Command {
	var allNamespaces, allKinds bool
	var pf printFlags
	cmd := &cobra.Command{
		Use:   "list [-A] [-o wide|json|yaml|name] [--no-headers] [-l SELECTOR]",
		Short: "List every election Lease with its holder, token and state",
		Long: `List the election Leases of the namespace (or of all namespaces with -A): their
holder, type (elector, whose holder marks its writes, or client-go: any other),
state, token (spec.leaseTransitions), tenure (since spec.acquireTime, on the
holder's clock), lease duration, and how long ago the Lease was last written.

STATE is held, expired or released. "Last written" is the API server's own
time of the last write to the spec (managedFields) against its clock now (the
Date header of the answer), so no other host's clock enters; both have whole
seconds, so a Lease is called expired only when more than its duration plus
one second has passed. A RENEWED value with "~" was judged from spec.renewTime
(the holder's clock) because the Lease has no managedFields.

A sharded group (package shard, or the sidecar's --shards) is one row of TYPE
sharded, named after the group: its coordinator election's holder and state,
with the live and total members and the shards in -o wide; its member,
coordinator and assignment Leases are not listed on their own (see kubectl
elector shards GROUP).

Node heartbeats (kube-node-lease) and kube-apiserver identity Leases are not
elections and are left out unless --all-kinds is given, which also lists
every Lease of a sharded group on its own.

-o name prints lease.coordination.k8s.io/NAME (a group's coordinator Lease),
for kubectl; -l selects Leases by label, as kubectl's -l.`,
		Example: `  kubectl elector list
  kubectl elector list -A -o wide
  kubectl elector list -n kube-system -o json
  kubectl elector list -l app=payments --no-headers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.validate(cmd); err != nil {
				return err
			}
			return a.list(cmd, allNamespaces, allKinds, pf)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list the Leases of every namespace")
	cmd.Flags().BoolVar(&allKinds, "all-kinds", false, "include node heartbeats (kube-node-lease) and kube-apiserver identity Leases, and list a sharded group's Leases one by one")
	pf.add(cmd, true)
	return cmd
}

func (a *app) list(cmd *cobra.Command, allNamespaces, allKinds bool, pf printFlags) error {
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
	leases, err := k.coordination.Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: pf.selector})
	if err != nil {
		return a.apiErr(ctx, err, need{namespace: ns, role: viewerRole, what: "list Leases", rules: viewerRules()})
	}
	now := k.date.now()
	if now.IsZero() {
		now = a.clock.Now()
	}
	var kept []*coordinationv1.Lease
	for i := range leases.Items {
		l := &leases.Items[i]
		if !allKinds && isHeartbeat(l) {
			continue
		}
		kept = append(kept, l)
	}
	var views []view
	if allKinds {
		for _, l := range kept {
			views = append(views, judge(l, now))
		}
	} else {
		views = groupViews(kept, now)
	}
	sortViews(views)
	switch {
	case pf.structured():
		return writeStructured(a.stdout, pf.output, listOutput(views, now))
	case pf.output == outputName:
		for _, v := range views {
			fmt.Fprintln(a.stdout, leaseResource+primaryLease(v))
		}
		return nil
	}
	if len(views) == 0 {
		where := "namespace " + ns
		if allNamespaces {
			where = "any namespace"
		}
		if pf.selector != "" {
			where += " with labels " + pf.selector
		}
		fmt.Fprintf(a.stderr, "No election Leases found in %s.\n", where)
		return nil
	}
	_, err = io.WriteString(a.stdout, renderTable(views, pf.output == outputWide, allNamespaces, pf.noHeaders))
	return err
}

func sortViews(vs []view) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Namespace != vs[j].Namespace {
			return vs[i].Namespace < vs[j].Namespace
		}
		return vs[i].Name < vs[j].Name
	})
}

// renderTable renders views as kubectl renders tables: upper-case
// headers, columns separated by three spaces, "<none>" for empty values.
func renderTable(views []view, wide, withNamespace, noHeaders bool) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	header := []string{"NAME", "HOLDER", "TYPE", "STATE", "TOKEN", "TENURE", "DURATION", "RENEWED"}
	if wide {
		header = append(header, "HANDOFF", "VERSION", "REQUEST", "ACQUIRED", "RENEW-TIME", "MEMBERS", "SHARDS")
	}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if !noHeaders {
		fmt.Fprintln(w, strings.Join(header, "\t"))
	}
	for _, v := range views {
		row := []string{
			v.Name, orNone(v.Holder), v.Type, v.State, strconv.Itoa(int(v.Token)),
			tenureCell(v), durationCell(v.LeaseDuration), renewedCell(v),
		}
		if wide {
			row = append(row, handoffCell(v), orNone(v.ElectorVersion), requestCell(v),
				timeCell(v.AcquireTime), timeCell(v.RenewTime), membersCell(v), shardsCell(v))
		}
		if withNamespace {
			row = append([]string{v.Namespace}, row...)
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	w.Flush()
	return b.String()
}

// membersCell is a sharded group's live and total members: "2/3".
func membersCell(v view) string {
	if v.Group == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", v.Group.Live, len(v.Group.Members))
}

// shardsCell is a sharded group's number of shards.
func shardsCell(v view) string {
	switch {
	case v.Group == nil:
		return "-"
	case v.Group.Shards == 0:
		return "<none>"
	}
	return strconv.Itoa(v.Group.Shards)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func tenureCell(v view) string {
	if !v.TenureKnown {
		return "<none>"
	}
	return duration.HumanDuration(v.Tenure)
}

func durationCell(d time.Duration) string {
	if d <= 0 {
		return "<none>"
	}
	return d.String()
}

// renewedCell is how long ago the Lease was written: "~" marks a value
// judged on the holder's clock.
func renewedCell(v view) string {
	switch v.RenewalBasis {
	case basisServer:
		return duration.HumanDuration(v.SinceRenewal) + " ago"
	case basisHolder:
		return "~" + duration.HumanDuration(v.SinceRenewal) + " ago"
	}
	return "<unknown>"
}

func handoffCell(v view) string {
	switch {
	case v.Holder == "" || v.Type == typeNode || v.Type == typeAPIServer || v.Type == typeSharded:
		return "-"
	case v.CanHandOff:
		return "yes"
	}
	return "no"
}

// requestCell is a pending handoff: the annotation, else a
// spec.preferredHolder other than the holder (Coordinated Leader
// Election), which elector holders treat as a request to that candidate.
func requestCell(v view) string {
	switch {
	case v.HandoffTo == nil && v.PreferredHolder != "" && v.PreferredHolder != v.Holder:
		return "preferred " + v.PreferredHolder
	case v.HandoffTo == nil:
		return "<none>"
	case *v.HandoffTo == "":
		return "to anyone"
	}
	return "to " + *v.HandoffTo
}

func timeCell(t *time.Time) string {
	if t == nil {
		return "<none>"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// leaseOutput is one Lease in -o json|yaml: the view with durations in
// seconds.
type leaseOutput struct {
	Namespace            string     `json:"namespace"`
	Name                 string     `json:"name"`
	Holder               string     `json:"holder"`
	Type                 string     `json:"type"`
	State                string     `json:"state"`
	Token                int32      `json:"token"`
	LeaseDurationSeconds float64    `json:"leaseDurationSeconds,omitempty"`
	SecondsSinceRenewal  *float64   `json:"secondsSinceRenewal,omitempty"`
	RenewalClock         string     `json:"renewalClock,omitempty"`
	TenureSeconds        *float64   `json:"tenureSeconds,omitempty"`
	AcquireTime          *time.Time `json:"acquireTime,omitempty"`
	RenewTime            *time.Time `json:"renewTime,omitempty"`
	LastWriteTime        *time.Time `json:"lastWriteTime,omitempty"`
	CanHandOff           bool       `json:"canHandOff"`
	ElectorVersion       string     `json:"electorVersion,omitempty"`
	HandoffRequestedTo   *string    `json:"handoffRequestedTo,omitempty"`
	PreferredHolder      string     `json:"preferredHolder,omitempty"`
	Strategy             string     `json:"strategy,omitempty"`
	// ShardGroup is set on a sharded group (type sharded): the other
	// fields are its coordinator election's.
	ShardGroup *groupInfo `json:"shardGroup,omitempty"`
}

// listOut is the document of -o json|yaml.
type listOut struct {
	// ServerTime is the API server's clock when it answered.
	ServerTime time.Time     `json:"serverTime"`
	Items      []leaseOutput `json:"items"`
}

func listOutput(views []view, now time.Time) listOut {
	out := listOut{ServerTime: now.UTC(), Items: []leaseOutput{}}
	for _, v := range views {
		out.Items = append(out.Items, toOutput(v))
	}
	return out
}

func toOutput(v view) leaseOutput {
	o := leaseOutput{
		Namespace: v.Namespace, Name: v.Name, Holder: v.Holder, Type: v.Type, State: v.State, Token: v.Token,
		LeaseDurationSeconds: v.LeaseDuration.Seconds(),
		AcquireTime:          utc(v.AcquireTime), RenewTime: utc(v.RenewTime), LastWriteTime: utc(v.LastWrite),
		CanHandOff: v.CanHandOff, ElectorVersion: v.ElectorVersion, HandoffRequestedTo: v.HandoffTo,
		PreferredHolder: v.PreferredHolder, Strategy: v.Strategy, ShardGroup: v.Group,
	}
	if v.RenewalBasis != basisNone {
		s := v.SinceRenewal.Seconds()
		o.SecondsSinceRenewal = &s
		o.RenewalClock = v.RenewalBasis
	}
	if v.TenureKnown {
		s := v.Tenure.Seconds()
		o.TenureSeconds = &s
	}
	return o
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func writeStructured(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("unable to encode the output: %w", err)
	}
	if format == outputYAML {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("unable to encode the output: %w", err)
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}

// getLease reads one Lease, with the error for a denied or missing one.
func (a *app) getLease(cmd *cobra.Command, k *kube, ns, name string, n need) (*coordinationv1.Lease, error) {
	l, err := k.coordination.Leases(ns).Get(cmd.Context(), name, metav1.GetOptions{})
	if err != nil {
		if n.what == "" {
			n.what = fmt.Sprintf("get Lease %s/%s", ns, name)
		}
		e := a.apiErr(cmd.Context(), err, n)
		var ee *exitError
		if asExit(e, &ee) && ee.code == ExitNotFound {
			return nil, fail(ExitNotFound, "Lease %q not found in namespace %s; see %s list -n %s", name, ns, displayName, ns)
		}
		return nil, e
	}
	return l, nil
}
