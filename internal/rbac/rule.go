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

// Package rbac is everything elector knows about Kubernetes permissions.
//
// It names the exact RBAC rules elector needs (LeaseRules, SharedLeaseRules,
// EventRules, PodLabelRules), asks the API server which of them the caller
// lacks (Check, via SelfSubjectAccessReview), decodes 403 errors into what
// was denied (ParseForbidden), and renders the minimal namespaced Role and
// RoleBinding that fixes the problem as YAML and as kubectl commands
// (Role, RoleBinding, Explain). Nothing here ever suggests cluster-admin or a
// ClusterRole: elector only needs namespaced permissions.
package rbac

import (
	"sort"
	"strings"
)

// API groups used by elector.
const (
	// CoreGroup is the legacy core API group (pods, events), spelled "".
	CoreGroup = ""
	// CoordinationGroup is the API group of Lease objects.
	CoordinationGroup = "coordination.k8s.io"
)

// Rule is one permission: Verb on Resource in API Group, optionally limited
// to the single object Name. Resource may carry a subresource as
// "resource/subresource" (for example "leases/status"). An empty Name means
// any object of that resource in the namespace.
type Rule struct {
	Group    string
	Resource string
	Verb     string
	Name     string
}

// String renders the rule the way people read RBAC errors, for example
// `update leases.coordination.k8s.io "my-lock"` or `create events`.
func (r Rule) String() string {
	s := r.Verb + " " + qualifiedResource(r.Group, r.Resource)
	if r.Name != "" {
		s += " " + quote(r.Name)
	}
	return s
}

// normalize drops Name from verbs whose requests carry no object name, so
// that a resourceNames restriction on them would never match: create (the
// name is in the body, not the URL) and deletecollection.
func (r Rule) normalize() Rule {
	if r.Verb == "create" || r.Verb == "deletecollection" {
		r.Name = ""
	}
	return r
}

// qualifiedResource renders resource[.group][/subresource], the form
// accepted by `kubectl create role --resource`.
func qualifiedResource(group, resource string) string {
	res, sub, hasSub := strings.Cut(resource, "/")
	if group != "" {
		res += "." + group
	}
	if hasSub {
		res += "/" + sub
	}
	return res
}

// LeaseRules returns the rules elector needs to run an election on the
// single Lease leaseName.
//
// RBAC cannot restrict create by resourceNames (the name is not known when
// the request is authorized), so create is granted on all leases of the
// namespace. get and update (the only calls client-go's leader election
// makes after creation) and watch (used to notice a new holder promptly;
// a watch is name-restricted when it uses fieldSelector metadata.name) are
// limited to leaseName.
func LeaseRules(leaseName string) []Rule {
	return []Rule{
		{Group: CoordinationGroup, Resource: "leases", Verb: "create"},
		{Group: CoordinationGroup, Resource: "leases", Verb: "get", Name: leaseName},
		{Group: CoordinationGroup, Resource: "leases", Verb: "watch", Name: leaseName},
		{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: leaseName},
	}
}

// SharedLeaseRules returns the rules for observing and running many
// elections in one namespace through one shared informer: the informer
// needs list and watch on all leases (a namespace-wide list cannot be
// limited by name), and the elections need get, create and update on
// leases whose names are not known in advance.
func SharedLeaseRules() []Rule {
	return []Rule{
		{Group: CoordinationGroup, Resource: "leases", Verb: "get"},
		{Group: CoordinationGroup, Resource: "leases", Verb: "list"},
		{Group: CoordinationGroup, Resource: "leases", Verb: "watch"},
		{Group: CoordinationGroup, Resource: "leases", Verb: "create"},
		{Group: CoordinationGroup, Resource: "leases", Verb: "update"},
	}
}

// EventRules returns the rules for emitting leadership events.
//
// elector records events with client-go's tools/record EventRecorder, the
// recorder type client-go's leaderelection.ResourceLockConfig expects. Its
// sink (typed corev1 EventSinkImpl) writes core/v1 Events (API group ""),
// not events.k8s.io: it calls create for a new event and patch to bump the
// count of a repeated one (tools/record/event.go recordEvent). It never
// reads, updates or deletes events.
func EventRules() []Rule {
	return []Rule{
		{Group: CoreGroup, Resource: "events", Verb: "create"},
		{Group: CoreGroup, Resource: "events", Verb: "patch"},
	}
}

// PodLabelRules returns the rules for marking the leader's pod with a label.
//
//   - patch: set the label on the own pod and remove it from pods that still
//     carry it. The other pods' names are not known in advance, so patch
//     cannot be limited by name (and then limiting it for the own pod adds
//     nothing). A merge patch needs no prior get: the own pod's name comes
//     from the downward API and patch returns the updated object.
//   - list: find the pods that carry the leader label, with a label
//     selector; a label-selected list cannot be limited by name.
//
// get and watch are deliberately absent: nothing reads a single pod or
// follows pods over time.
func PodLabelRules() []Rule {
	return []Rule{
		{Group: CoreGroup, Resource: "pods", Verb: "list"},
		{Group: CoreGroup, Resource: "pods", Verb: "patch"},
	}
}

// OldLockRules returns the rules for holding an old annotation lock during
// a migration (package migrate): resource is "endpoints" or "configmaps".
//
//   - get, update: read and renew the lock, limited to its name.
//   - create: only if the object is absent; create cannot be limited by name.
func OldLockRules(resource, name string) []Rule {
	return []Rule{
		{Group: CoreGroup, Resource: resource, Verb: "create"},
		{Group: CoreGroup, Resource: resource, Verb: "get", Name: name},
		{Group: CoreGroup, Resource: resource, Verb: "update", Name: name},
	}
}

// verbOrder is the fixed order verbs are rendered in; unknown verbs follow,
// alphabetically.
var verbOrder = map[string]int{
	"get":              0,
	"list":             1,
	"watch":            2,
	"create":           3,
	"update":           4,
	"patch":            5,
	"delete":           6,
	"deletecollection": 7,
}

// sortVerbs sorts verbs in place in rendering order.
func sortVerbs(verbs []string) {
	sort.Slice(verbs, func(i, j int) bool {
		oi, iKnown := verbOrder[verbs[i]]
		oj, jKnown := verbOrder[verbs[j]]
		switch {
		case iKnown && jKnown:
			return oi < oj
		case iKnown != jKnown:
			return iKnown
		default:
			return verbs[i] < verbs[j]
		}
	})
}
