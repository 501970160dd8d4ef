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
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		name       string
		lease      *coordinationv1.Lease
		now        time.Time
		wantState  string
		wantType   string
		wantSince  time.Duration
		wantBasis  string
		wantHandof bool
	}{
		{
			name:  "elector holder, written 3s ago",
			lease: newLease("team-a", "l", "pod-1", 7, electorMarker),
			now:   t0, wantState: stateHeld, wantType: typeElector, wantSince: 3 * time.Second, wantBasis: basisServer, wantHandof: true,
		},
		{
			name:  "client-go holder: no marker",
			lease: newLease("team-a", "l", "cg-1", 2),
			now:   t0, wantState: stateHeld, wantType: typeClientGo, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name:  "stale marker: a client-go holder kept an elector's annotation",
			lease: newLease("team-a", "l", "cg-1", 8, withMarker("pod-1", 7, true, "")),
			now:   t0, wantState: stateHeld, wantType: typeClientGo, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name:  "marker of an elector without handoff",
			lease: newLease("team-a", "l", "pod-1", 7, withMarker("pod-1", 7, false, "")),
			now:   t0, wantState: stateHeld, wantType: typeElector, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			// 16s since the last write: within duration + precision.
			name:  "at the edge: not yet called expired",
			lease: newLease("team-a", "l", "pod-1", 7, electorMarker, withWrite(t0.Add(-16*time.Second))),
			now:   t0, wantState: stateHeld, wantType: typeElector, wantSince: 16 * time.Second, wantBasis: basisServer, wantHandof: true,
		},
		{
			name:  "expired by the API server's clock",
			lease: newLease("team-a", "l", "pod-1", 7, electorMarker, withWrite(t0.Add(-16*time.Second-time.Millisecond))),
			now:   t0, wantState: stateExpired, wantType: typeElector, wantSince: 16*time.Second + time.Millisecond, wantBasis: basisServer, wantHandof: true,
		},
		{
			// The holder's clock is an hour behind: renewTime looks
			// ancient, but the server saw the write 3s ago.
			name:  "a holder clock far behind does not make it expired",
			lease: newLease("team-a", "l", "pod-1", 7, withRenew(t0.Add(-time.Hour))),
			now:   t0, wantState: stateHeld, wantType: typeClientGo, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name: "no managedFields: judged on renewTime, the holder's clock",
			lease: newLease("team-a", "l", "pod-1", 7, withRenew(t0.Add(-20*time.Second)), func(l *coordinationv1.Lease) {
				l.ManagedFields = nil
			}),
			now: t0, wantState: stateExpired, wantType: typeClientGo, wantSince: 20 * time.Second, wantBasis: basisHolder,
		},
		{
			name: "an annotation-only write does not count as a renewal",
			lease: newLease("team-a", "l", "pod-1", 7, withWrite(t0.Add(-30*time.Second)), func(l *coordinationv1.Lease) {
				mt := metav1.NewTime(t0.Add(-time.Second))
				l.ManagedFields = append(l.ManagedFields, metav1.ManagedFieldsEntry{
					Manager: fieldManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: &mt, FieldsType: "FieldsV1",
					FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:elector.dev/handoff-to":{}}}}`),
				})
			}),
			now: t0, wantState: stateExpired, wantType: typeClientGo, wantSince: 30 * time.Second, wantBasis: basisServer,
		},
		{
			name:  "released",
			lease: newLease("team-a", "l", "", 7),
			now:   t0, wantState: stateReleased, wantType: typeClientGo, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name:  "no lease duration",
			lease: newLease("team-a", "l", "pod-1", 7, func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = nil }),
			now:   t0, wantState: stateUnknown, wantType: typeClientGo, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name:  "no server time",
			lease: newLease("team-a", "l", "pod-1", 7),
			now:   time.Time{}, wantState: stateUnknown, wantType: typeClientGo,
		},
		{
			name:  "node heartbeat",
			lease: newLease(nodeLeaseNamespace, "node-1", "node-1", 0),
			now:   t0, wantState: stateHeld, wantType: typeNode, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
		{
			name: "kube-apiserver identity",
			lease: newLease("kube-system", "apiserver-x", "apiserver-x_1", 0, func(l *coordinationv1.Lease) {
				l.Labels = map[string]string{apiserverIdentityLabel: "kube-apiserver"}
			}),
			now: t0, wantState: stateHeld, wantType: typeAPIServer, wantSince: 3 * time.Second, wantBasis: basisServer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.lease, tt.now)
			if v.State != tt.wantState || v.Type != tt.wantType || v.SinceRenewal != tt.wantSince ||
				v.RenewalBasis != tt.wantBasis || v.CanHandOff != tt.wantHandof {
				t.Errorf("judge() = state %q type %q since %v basis %q canHandOff %t; want %q %q %v %q %t",
					v.State, v.Type, v.SinceRenewal, v.RenewalBasis, v.CanHandOff,
					tt.wantState, tt.wantType, tt.wantSince, tt.wantBasis, tt.wantHandof)
			}
		})
	}
}

func TestIsHeartbeat(t *testing.T) {
	if !isHeartbeat(newLease(nodeLeaseNamespace, "n", "n", 0)) {
		t.Error("a node Lease is not a heartbeat")
	}
	if isHeartbeat(newLease("kube-system", "kube-controller-manager", "kcm-1", 0)) {
		t.Error("kube-controller-manager's election is a heartbeat")
	}
}

func TestRenderTable(t *testing.T) {
	views := []view{
		judge(newLease("team-a", "my-controller", "pod-1", 7, electorMarker), t0),
		judge(newLease("team-a", "legacy", "cg-1", 2, withWrite(t0.Add(-40*time.Second))), t0),
		judge(newLease("team-b", "free", "", 3, annotate(annotationHandoffTo, "")), t0),
	}
	got := renderTable(views, false, true, false)
	want := `NAMESPACE   NAME            HOLDER   TYPE        STATE      TOKEN   TENURE   DURATION   RENEWED
team-a      my-controller   pod-1    elector     held       7       5m       15s        3s ago
team-a      legacy          cg-1     client-go   expired    2       5m       15s        40s ago
team-b      free            <none>   client-go   released   3       <none>   15s        3s ago
`
	if got != want {
		t.Errorf("renderTable() =\n%s\nwant\n%s", got, want)
	}
	got = renderTable(views[:1], true, false, false)
	want = `NAME            HOLDER   TYPE      STATE   TOKEN   TENURE   DURATION   RENEWED   HANDOFF   VERSION   REQUEST   ACQUIRED                   RENEW-TIME                 MEMBERS   SHARDS
my-controller   pod-1    elector   held    7       5m       15s        3s ago    yes       v0.2.0    <none>    2026-12-02T01:55:00.000Z   2026-12-02T01:59:57.000Z   -         -
`
	if got != want {
		t.Errorf("renderTable(wide) =\n%s\nwant\n%s", got, want)
	}
	got = renderTable(views[1:2], false, false, true)
	want = "legacy   cg-1   client-go   expired   2   5m   15s   40s ago\n"
	if got != want {
		t.Errorf("renderTable(no headers) =\n%q\nwant\n%q", got, want)
	}
}

func TestListOutputJSON(t *testing.T) {
	v := judge(newLease("team-a", "l", "pod-1", 7, electorMarker, annotate(annotationHandoffTo, "pod-2")), t0)
	o := toOutput(v)
	if o.SecondsSinceRenewal == nil || *o.SecondsSinceRenewal != 3 || o.RenewalClock != basisServer ||
		o.TenureSeconds == nil || *o.TenureSeconds != 300 || o.HandoffRequestedTo == nil || *o.HandoffRequestedTo != "pod-2" ||
		o.LeaseDurationSeconds != 15 || !o.CanHandOff || o.State != stateHeld {
		t.Errorf("toOutput() = %+v", o)
	}
}

func TestRequestCell(t *testing.T) {
	preferred := func(to string) leaseOpt {
		return func(l *coordinationv1.Lease) { l.Spec.PreferredHolder = &to }
	}
	tests := []struct {
		opts []leaseOpt
		want string
	}{
		{nil, "<none>"},
		{[]leaseOpt{annotate(annotationHandoffTo, "")}, "to anyone"},
		{[]leaseOpt{annotate(annotationHandoffTo, "pod-2")}, "to pod-2"},
		{[]leaseOpt{preferred("pod-3")}, "preferred pod-3"},
		{[]leaseOpt{preferred("pod-1")}, "<none>"}, // the holder itself
		{[]leaseOpt{preferred("pod-3"), annotate(annotationHandoffTo, "pod-2")}, "to pod-2"},
	}
	for _, tt := range tests {
		if got := requestCell(judge(newLease("n", "l", "pod-1", 1, tt.opts...), t0)); got != tt.want {
			t.Errorf("requestCell() = %q, want %q", got, tt.want)
		}
	}
}
