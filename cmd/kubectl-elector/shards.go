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
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/elector-dev/elector/shard"
)

func (a *app) shardsCommand() *cobra.Command {
	var pf printFlags
	cmd := &cobra.Command{
		Use:   "shards [GROUP] [-o wide|json|yaml|name] [--no-headers] [-l SELECTOR]",
		Short: "Show the assignment of a sharded group: members, and every shard's owner and token",
		Long: `Show the sharded group GROUP (package shard, or the sidecar's --shards with
--election=GROUP): its members with the state of their member Lease and the
shards each owns, then every shard's owner, fencing token and pending
handoff, from the assignment Lease GROUP-shards (docs/sharding.md).

Without GROUP, list the sharded groups of the namespace (their assignment
Leases; -l selects among them by label): shards, generation, live and total
members, coordinator.

-o wide adds each member's Lease name and each shard's owner epoch; -o
json|yaml print the same as a document; -o name prints the group's Leases
(lease.coordination.k8s.io/NAME); --no-headers leaves out the title and the
column headers.`,
		Example: `  kubectl elector shards -n team-a
  kubectl elector shards workers -n team-a
  kubectl elector shards workers -n team-a -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.validate(cmd); err != nil {
				return err
			}
			if len(args) == 0 {
				return a.shardGroups(cmd, pf)
			}
			if pf.selector != "" {
				return usageErr(cmd, "GROUP and -l exclude each other: -l selects among the groups")
			}
			return a.shards(cmd, args[0], pf)
		},
	}
	pf.add(cmd, true)
	return cmd
}

// shardsOutput is shards GROUP in -o json|yaml.
type shardsOutput struct {
	Namespace  string        `json:"namespace"`
	Group      string        `json:"group"`
	Shards     int           `json:"shards"`
	Generation int64         `json:"generation"`
	Members    []groupMember `json:"members"`
	Assignment []shardSlot   `json:"assignment"`
}

// shardSlot is one shard in shardsOutput.
type shardSlot struct {
	Shard     int    `json:"shard"`
	Owner     string `json:"owner"`
	Epoch     int64  `json:"epoch"`
	Token     int64  `json:"token"`
	HandoffTo string `json:"handoffTo,omitempty"`
}

func (a *app) shards(cmd *cobra.Command, group string, pf printFlags) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	n := need{namespace: ns, rules: viewerRules(), role: viewerRole}
	l, err := a.getLease(cmd, k, ns, shard.AssignmentName(group), n)
	if err != nil {
		return err
	}
	t, err := shard.TableOf(l)
	if err != nil {
		return fail(ExitFailure, "%s", oneLine(err))
	}
	members, err := k.coordination.Leases(ns).List(ctx, metav1.ListOptions{
		LabelSelector: shard.LabelGroup + "=" + group + "," + shard.LabelRole + "=" + shard.RoleMember,
	})
	if err != nil {
		n.what = "list Leases"
		return a.apiErr(ctx, err, n)
	}
	now := k.date.now()
	if now.IsZero() {
		now = a.clock.Now()
	}
	owned := map[string][]int{}
	out := shardsOutput{Namespace: ns, Group: group, Shards: len(t.Shards), Generation: t.Generation, Members: []groupMember{}, Assignment: []shardSlot{}}
	for i, s := range t.Shards {
		if s.Owner != "" {
			owned[s.Owner] = append(owned[s.Owner], i)
		}
		out.Assignment = append(out.Assignment, shardSlot{Shard: i, Owner: s.Owner, Epoch: s.Epoch, Token: s.Token, HandoffTo: s.HandoffTo})
	}
	var views []view
	for i := range members.Items {
		views = append(views, judge(&members.Items[i], now))
	}
	sort.Slice(views, func(i, j int) bool {
		if views[i].Holder != views[j].Holder {
			return views[i].Holder < views[j].Holder
		}
		return views[i].Name < views[j].Name
	})
	for _, v := range views {
		m := groupMember{Identity: v.Holder, Lease: v.Name, State: v.State, Epoch: v.Token, Shards: []int{}}
		if v.Holder != "" {
			m.Shards = append(m.Shards, owned[v.Holder]...)
		}
		out.Members = append(out.Members, m)
	}
	switch {
	case pf.structured():
		return writeStructured(a.stdout, pf.output, out)
	case pf.output == outputName:
		names := []string{shard.AssignmentName(group), shard.CoordinatorName(group)}
		for _, v := range views {
			names = append(names, v.Name)
		}
		for _, name := range names {
			fmt.Fprintln(a.stdout, leaseResource+name)
		}
		return nil
	}
	wide := pf.output == outputWide
	if !pf.noHeaders {
		fmt.Fprintf(a.stdout, "Group %s/%s: %d shards, generation %d.\n\n", ns, group, len(t.Shards), t.Generation)
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	if !pf.noHeaders {
		if wide {
			fmt.Fprintln(w, "MEMBER\tSTATE\tEPOCH\tRENEWED\tSHARDS\tLEASE")
		} else {
			fmt.Fprintln(w, "MEMBER\tSTATE\tEPOCH\tRENEWED\tSHARDS")
		}
	}
	for i, v := range views {
		holder := v.Holder
		if holder == "" {
			holder = "(released) " + v.Name
		}
		shards := make([]string, len(out.Members[i].Shards))
		for j, s := range out.Members[i].Shards {
			shards[j] = strconv.Itoa(s)
		}
		row := fmt.Sprintf("%s\t%s\t%d\t%s\t%s", holder, v.State, v.Token, renewedCell(v), strings.Join(shards, ","))
		if wide {
			row += "\t" + v.Name
		}
		fmt.Fprintln(w, row)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	w = tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	if !pf.noHeaders {
		if wide {
			fmt.Fprintln(w, "SHARD\tOWNER\tTOKEN\tHANDOFF\tEPOCH")
		} else {
			fmt.Fprintln(w, "SHARD\tOWNER\tTOKEN\tHANDOFF")
		}
	}
	for _, s := range out.Assignment {
		row := fmt.Sprintf("%d\t%s\t%d\t%s", s.Shard, dash(s.Owner), s.Token, dash(s.HandoffTo))
		if wide {
			row += fmt.Sprintf("\t%d", s.Epoch)
		}
		fmt.Fprintln(w, row)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shardGroups lists the sharded groups of the namespace: shards
// without GROUP.
func (a *app) shardGroups(cmd *cobra.Command, pf printFlags) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	n := need{namespace: ns, rules: viewerRules(), role: viewerRole, what: "list Leases"}
	// Every Lease of a group carries LabelGroup: one list. The user's -l
	// selects among the groups by their assignment Leases.
	all, err := k.coordination.Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: shard.LabelGroup})
	if err != nil {
		return a.apiErr(ctx, err, n)
	}
	sel, err := labels.Parse(pf.selector)
	if err != nil {
		return usageErr(cmd, "-l %q: %s", pf.selector, oneLine(err))
	}
	chosen := map[string]bool{}
	for i := range all.Items {
		l := &all.Items[i]
		if g, role, ok := shardPart(l); ok && role == shard.RoleAssignment && sel.Matches(labels.Set(l.Labels)) {
			chosen[g] = true
		}
	}
	var leases []*coordinationv1.Lease
	for i := range all.Items {
		if g, _, ok := shardPart(&all.Items[i]); ok && chosen[g] {
			leases = append(leases, &all.Items[i])
		}
	}
	now := k.date.now()
	if now.IsZero() {
		now = a.clock.Now()
	}
	views := groupViews(leases, now)
	sortViews(views)
	switch {
	case pf.structured():
		return writeStructured(a.stdout, pf.output, listOutput(views, now))
	case pf.output == outputName:
		for _, v := range views {
			fmt.Fprintln(a.stdout, leaseResource+shard.AssignmentName(v.Name))
		}
		return nil
	}
	if len(views) == 0 {
		fmt.Fprintf(a.stderr, "No sharded groups found in namespace %s.\n", ns)
		return nil
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	if !pf.noHeaders {
		h := "GROUP\tSHARDS\tGENERATION\tMEMBERS\tCOORDINATOR"
		if pf.output == outputWide {
			h += "\tSTATE\tLEASES"
		}
		fmt.Fprintln(w, h)
	}
	for _, v := range views {
		row := fmt.Sprintf("%s\t%s\t%d\t%s\t%s", v.Name, shardsCell(v), v.Group.Generation, membersCell(v), orNone(v.Group.Coordinator))
		if pf.output == outputWide {
			row += fmt.Sprintf("\t%s\t%d", v.State, len(v.Group.Leases))
		}
		fmt.Fprintln(w, row)
	}
	return w.Flush()
}
