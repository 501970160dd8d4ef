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
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/shard"
)

func (a *app) shardsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "shards GROUP",
		Short: "Show the assignment of a sharded group: members, and every shard's owner and token",
		Long: `Show the sharded group GROUP (package shard, or the sidecar's --shards with
--election=GROUP): its members with the state of their member Lease and the
shards each owns, then every shard's owner, fencing token and pending
handoff, from the assignment Lease GROUP-shards (docs/sharding.md).`,
		Example: `  kubectl elector shards workers -n team-a`,
		Args:    exactArgs(1, "the GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.shards(cmd, args[0])
		},
	}
}

func (a *app) shards(cmd *cobra.Command, group string) error {
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
	owned := map[string][]string{}
	for i, s := range t.Shards {
		if s.Owner != "" {
			owned[s.Owner] = append(owned[s.Owner], fmt.Sprint(i))
		}
	}
	fmt.Fprintf(a.stdout, "Group %s/%s: %d shards, generation %d.\n\n", ns, group, len(t.Shards), t.Generation)
	w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "MEMBER\tSTATE\tEPOCH\tRENEWED\tSHARDS")
	var views []view
	for i := range members.Items {
		views = append(views, judge(&members.Items[i], now))
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Holder < views[j].Holder })
	for _, v := range views {
		holder := v.Holder
		if holder == "" {
			holder = "(released) " + v.Name
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", holder, v.State, v.Token, renewedCell(v), strings.Join(owned[v.Holder], ","))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	w = tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "SHARD\tOWNER\tTOKEN\tHANDOFF")
	for i, s := range t.Shards {
		owner, to := s.Owner, s.HandoffTo
		if owner == "" {
			owner = "-"
		}
		if to == "" {
			to = "-"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\n", i, owner, s.Token, to)
	}
	return w.Flush()
}
