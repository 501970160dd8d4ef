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

package shard

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Labels and annotations of a shard group's Leases. Every Lease of a
// group carries LabelGroup, so that one namespace watch with a label
// selector sees them all.
const (
	// LabelGroup names the group: elector.dev/shard-group=<group>.
	LabelGroup = "elector.dev/shard-group"
	// LabelRole says what a Lease is in the group: member, coordinator or
	// assignment.
	LabelRole = "elector.dev/shard-role"
	// AnnotationShards holds the assignment table (JSON, see Table) on
	// the assignment Lease.
	AnnotationShards = "elector.dev/shards"
)

// Values of LabelRole.
const (
	RoleMember      = "member"
	RoleCoordinator = "coordinator"
	RoleAssignment  = "assignment"
)

// tableFormat is the version of the table's JSON; a reader refuses others.
const tableFormat = 1

// Table is the assignment: for each shard its owner, the owner's member
// tenure, the shard's fencing token and a pending handoff. It is stored as
// JSON in the AnnotationShards annotation of the assignment Lease and
// changed only by updates that carry the resourceVersion read.
type Table struct {
	// Format is the version of this layout (1).
	Format int `json:"format"`
	// Generation grows by one on every write, so that a reader can tell a
	// newer table from an older one delivered late.
	Generation int64 `json:"generation"`
	// Shards has one entry per shard; its length is the group's K.
	Shards []Slot `json:"shards"`
	// Leaving lists the member tenures (identity: epoch) that handed
	// their shards on at shutdown: the coordinator gives them nothing
	// while their member Lease is being released. The coordinator removes
	// an entry once that tenure is over.
	Leaving map[string]int64 `json:"leaving,omitempty"`
}

// Slot is one shard's entry in the Table.
type Slot struct {
	// Owner is the identity of the replica that owns the shard; "" when
	// unowned.
	Owner string `json:"owner,omitempty"`
	// Epoch is the owner's member tenure (the leaseTransitions of its
	// member Lease when the tenure began). A replica owns the shard only
	// in that tenure.
	Epoch int64 `json:"epoch,omitempty"`
	// Token is the shard's fencing token; it grows on every change of
	// owner.
	Token int64 `json:"token"`
	// HandoffTo, when set, asks the owner to stop the shard's work and
	// then hand the shard to this identity in its tenure HandoffEpoch.
	HandoffTo    string `json:"handoffTo,omitempty"`
	HandoffEpoch int64  `json:"handoffEpoch,omitempty"`
}

func (t Table) clone() Table {
	t.Shards = append([]Slot(nil), t.Shards...)
	if t.Leaving != nil {
		m := make(map[string]int64, len(t.Leaving))
		for k, v := range t.Leaving {
			m[k] = v
		}
		t.Leaving = m
	}
	return t
}

// TableOf parses the table of an assignment Lease.
func TableOf(l *coordinationv1.Lease) (Table, error) {
	raw, ok := l.Annotations[AnnotationShards]
	if !ok {
		return Table{}, fmt.Errorf("unable to read the assignment: Lease %s has no %s annotation", l.Name, AnnotationShards)
	}
	var t Table
	if err := json.Unmarshal([]byte(raw), &t); err != nil {
		return Table{}, fmt.Errorf("unable to parse the assignment in Lease %s: %w", l.Name, err)
	}
	if t.Format != tableFormat {
		return Table{}, fmt.Errorf("unable to read the assignment in Lease %s: format %d, this elector reads %d", l.Name, t.Format, tableFormat)
	}
	return t, nil
}

func (t Table) encode() string {
	b, _ := json.Marshal(t)
	return string(b)
}

// Lease names of a group: <group>-shards, <group>-coordinator and one
// <group>-m-<hash of the identity> per replica.

// AssignmentName is the name of the group's assignment Lease.
func AssignmentName(group string) string { return group + "-shards" }

// CoordinatorName is the name of the Lease of the group's coordinator
// election.
func CoordinatorName(group string) string { return group + "-coordinator" }

// MemberName is the name of the member Lease of identity in group: a hash,
// so that any identity gives a valid, fixed-length name.
func MemberName(group, identity string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(identity))
	return fmt.Sprintf("%s-m-%016x", group, h.Sum64())
}
