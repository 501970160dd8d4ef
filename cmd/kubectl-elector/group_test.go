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
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector/shard"
)

// TestListGroupsShards: a sharded group's coordinator, assignment and
// member Leases are one row named after the group, not five elections.
func TestListGroupsShards(t *testing.T) {
	objs := append(shardLeases(), newLease("team-a", "payments", "pod-1", 3, electorMarker, withLabels("app", "payments")))
	cs := newFake(objs...)

	r := runFake(t, cs, "list")
	want := "NAME       HOLDER      TYPE      STATE   TOKEN   TENURE   DURATION   RENEWED\n" +
		"payments   pod-1       elector   held    3       5m       15s        3s ago\n" +
		"workers    replica-a   sharded   held    1       5m       15s        3s ago\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("list: %+v\nwant stdout\n%s", r, want)
	}

	r = runFake(t, cs, "list", "-o", "wide", "--no-headers")
	if r.code != 0 || strings.Contains(r.stdout, "NAME") ||
		!regexp.MustCompile(`(?m)^workers\s+replica-a\s+sharded\s+held\s.*\s-\s+v0\.2\.0\s+<none>\s+\S+\s+\S+\s+2/3\s+4$`).MatchString(r.stdout) {
		t.Errorf("list -o wide --no-headers: %+v", r)
	}

	r = runFake(t, cs, "list", "-o", "name")
	if want := "lease.coordination.k8s.io/payments\nlease.coordination.k8s.io/workers-coordinator\n"; r.code != 0 || r.stdout != want {
		t.Errorf("list -o name: %+v, want %q", r, want)
	}

	r = runFake(t, cs, "list", "-l", "app=payments", "-o", "name")
	if want := "lease.coordination.k8s.io/payments\n"; r.code != 0 || r.stdout != want {
		t.Errorf("list -l app=payments: %+v, want %q", r, want)
	}
	r = runFake(t, cs, "list", "-l", "app=nothing")
	if r.code != 0 || r.stdout != "" || r.stderr != "No election Leases found in namespace team-a with labels app=nothing.\n" {
		t.Errorf("list -l app=nothing: %+v", r)
	}

	r = runFake(t, cs, "list", "-o", "json")
	var doc struct {
		Items []leaseOutput `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || len(doc.Items) != 2 {
		t.Fatalf("list -o json: %v %+v", err, r)
	}
	g := doc.Items[1].ShardGroup
	if doc.Items[1].Type != typeSharded || g == nil || g.Shards != 4 || g.Generation != 5 || g.Live != 2 || len(g.Members) != 3 ||
		g.Coordinator != "replica-a" || len(g.Leases) != 5 {
		t.Fatalf("list -o json: group %+v", doc.Items[1])
	}
	if m := g.Members[1]; m.Identity != "replica-a" || m.State != stateHeld || len(m.Shards) != 2 || m.Shards[0] != 0 || m.Shards[1] != 2 {
		t.Errorf("member replica-a: %+v", m)
	}
	if m := g.Members[0]; m.Identity != "" || m.State != stateReleased || len(m.Shards) != 0 {
		t.Errorf("the member that left: %+v", m)
	}

	// --all-kinds lists every Lease on its own.
	r = runFake(t, cs, "list", "--all-kinds", "-o", "name")
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != 6 {
		t.Errorf("list --all-kinds: %d Leases, want 6: %+v", n, r)
	}
}

func TestOutputFlagErrors(t *testing.T) {
	cs := newFake()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "-l", "a b"}, `kubectl elector: -l "a b": `},
		{[]string{"shards", "-o", "xml"}, `kubectl elector: -o "xml": want wide, json, yaml or name; see kubectl elector shards -h`},
		{[]string{"shards", "g", "-l", "a=b"}, "kubectl elector: GROUP and -l exclude each other: -l selects among the groups; see kubectl elector shards -h"},
		{[]string{"watch", "-l", "=x"}, `kubectl elector: -l "=x": `},
		{[]string{"version", "-o", "wide"}, `kubectl elector: -o "wide": want json or yaml; see kubectl elector version -h`},
	} {
		r := runFake(t, cs, tt.args...)
		if r.code != ExitUsage || !strings.HasPrefix(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: %+v; want exit 2 and %q", tt.args, r, tt.want)
		}
	}
}

func TestShardsOutput(t *testing.T) {
	cs := newFake(shardLeases()...)
	r := runFake(t, cs, "shards", "workers", "--no-headers")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "(released) workers-m-") ||
		!regexp.MustCompile(`(?m)^replica-a\s+held\s+0\s+3s ago\s+0,2\nreplica-b\s+held\s+1\s+3s ago\s+1,3\n\n0`).MatchString(r.stdout) ||
		strings.Contains(r.stdout, "Group ") || strings.Contains(r.stdout, "MEMBER") ||
		!strings.HasSuffix(r.stdout, "\n0   replica-a   2   -\n1   replica-b   2   -\n2   replica-a   2   -\n3   replica-b   2   replica-a\n") {
		t.Errorf("shards --no-headers: %+v", r)
	}

	r = runFake(t, cs, "shards", "workers", "-o", "wide")
	if r.code != 0 || !regexp.MustCompile(`(?m)^MEMBER\s+STATE\s+EPOCH\s+RENEWED\s+SHARDS\s+LEASE$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^replica-b\s+held\s+1\s+3s ago\s+1,3\s+`+shard.MemberName("workers", "replica-b")+`$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^SHARD\s+OWNER\s+TOKEN\s+HANDOFF\s+EPOCH$`).MatchString(r.stdout) {
		t.Errorf("shards -o wide: %+v", r)
	}

	r = runFake(t, cs, "shards", "workers", "-o", "json")
	var doc shardsOutput
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || doc.Shards != 4 || doc.Generation != 5 ||
		len(doc.Members) != 3 || len(doc.Assignment) != 4 || doc.Assignment[3].HandoffTo != "replica-a" {
		t.Errorf("shards -o json: %v %+v", err, r)
	}

	r = runFake(t, cs, "shards", "workers", "-o", "name")
	if n := strings.Count(r.stdout, leaseResource); r.code != 0 || n != 5 || !strings.HasPrefix(r.stdout, leaseResource+"workers-shards\n"+leaseResource+"workers-coordinator\n") {
		t.Errorf("shards -o name: %+v", r)
	}

	// Without GROUP: the groups of the namespace.
	r = runFake(t, cs, "shards")
	want := "GROUP     SHARDS   GENERATION   MEMBERS   COORDINATOR\nworkers   4        5            2/3       replica-a\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("shards: %+v\nwant\n%s", r, want)
	}
	r = runFake(t, cs, "shards", "-l", "tier=none")
	if r.code != 0 || r.stdout != "" || r.stderr != "No sharded groups found in namespace team-a.\n" {
		t.Errorf("shards -l tier=none: %+v", r)
	}
}

// TestTrackerShardGroup: watch reports a group's members joining and
// leaving under the group, a released member Lease is no anomaly, a
// member that stops renewing is one, and the coordinator of a group that
// stopped is no anomaly either.
func TestTrackerShardGroup(t *testing.T) {
	tr := newTracker(defaultFlapWindow, defaultFlapChanges, false)
	objs := shardLeases()
	var lines []string
	at := t0
	for _, o := range objs {
		lines = append(lines, tr.observe(at, watch.Added, o.(*coordinationv1.Lease))...)
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"02:00:00.000  team-a/workers  coordinator: replica-a holds it (token 1, elector), lease 15s",
		"02:00:00.000  team-a/workers  assignment generation 5 of 4 shards: replica-a 0,2; replica-b 1,3; handing off 3 to replica-a",
		"02:00:00.000  team-a/workers  member replica-a is in (epoch 0)",
		"02:00:00.000  team-a/workers  member replica-b is in (epoch 1)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing line %q in\n%s", want, got)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d lines, want 4 (nothing for the released member):\n%s", len(lines), got)
	}

	// replica-b scales down: it releases its member Lease. replica-a
	// keeps renewing; the coordinator too.
	released := func(l *coordinationv1.Lease) *coordinationv1.Lease {
		c := l.DeepCopy()
		c.Spec.HolderIdentity = nil
		c.ResourceVersion = "2"
		return c
	}
	renewed := func(l *coordinationv1.Lease, at time.Time) *coordinationv1.Lease {
		c := l.DeepCopy()
		withRenew(at)(c)
		return c
	}
	coord, memberA, memberB := objs[0].(*coordinationv1.Lease), objs[2].(*coordinationv1.Lease), objs[3].(*coordinationv1.Lease)
	at = t0.Add(2 * time.Second)
	if got := tr.observe(at, watch.Modified, released(memberB)); len(got) != 1 || got[0] != "02:00:02.000  team-a/workers  member replica-b left: it released its member Lease (epoch 1)" {
		t.Errorf("member released: %q", got)
	}
	for s := 1; s <= 40; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		tr.observe(at, watch.Modified, renewed(coord, at))
		tr.observe(at, watch.Modified, renewed(memberA, at))
		if got := tr.tick(at); len(got) != 0 {
			t.Fatalf("tick at +%ds: %q, want no anomaly for a member that left", s, got)
		}
	}
	// replica-a stops renewing its member Lease (not released): anomaly.
	for s := 41; s <= 60; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		tr.observe(at, watch.Modified, renewed(coord, at))
		if got := tr.tick(at); len(got) != 0 {
			if s < 56 || len(got) != 1 || !strings.Contains(got[0], "team-a/workers  ANOMALY member replica-a has not renewed its member Lease "+memberA.Name+" for 16s (lease 15s)") {
				t.Fatalf("tick at +%ds: %q", s, got)
			}
			break
		}
		if s == 60 {
			t.Fatal("no anomaly for a member that stopped renewing")
		}
	}

	// The whole group stops: member and coordinator released. No anomaly.
	tr2 := newTracker(defaultFlapWindow, defaultFlapChanges, false)
	for _, l := range []*coordinationv1.Lease{released(coord), released(memberA)} {
		tr2.observe(t0, watch.Added, l)
	}
	if got := tr2.tick(t0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("a stopped group: %q, want no anomaly", got)
	}
	// A released coordinator while a member is live is one.
	tr3 := newTracker(defaultFlapWindow, defaultFlapChanges, false)
	tr3.observe(t0, watch.Added, released(coord))
	tr3.observe(t0, watch.Added, memberA)
	tr3.observe(t0.Add(10*time.Second), watch.Modified, renewed(memberA, t0.Add(10*time.Second)))
	if got := tr3.tick(t0.Add(16 * time.Second)); len(got) != 1 || !strings.Contains(got[0], "team-a/workers  coordinator: ANOMALY released 16s ago and no candidate has taken it") {
		t.Errorf("a released coordinator with a live member: %q", got)
	}
	_ = runtime.Object(nil)
}
