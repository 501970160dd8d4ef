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
	"errors"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/elector-dev/elector/internal/rbac"
)

// permissionSet is the rules needed in one namespace.
type permissionSet struct {
	namespace string
	rules     []rbac.Rule
}

// requiredPermissions lists every permission the configuration needs:
// the Lease rules; create events when Events are on; list and patch pods
// in the Pod's namespace with --leader-label. Nothing cluster-wide.
func requiredPermissions(c config) []permissionSet {
	if c.shards > 0 {
		// A sharded group (shards.go): member Leases whose names derive
		// from identities, and one label-selected watch; no Events.
		return []permissionSet{{namespace: c.namespace, rules: rbac.SharedLeaseRules()}}
	}
	sets := []permissionSet{{namespace: c.namespace, rules: rbac.LeaseRules(c.election)}}
	if c.events {
		// The sidecar writes each Event once with create; it never patches
		// (rbac.EventRules also lists patch, for client-go's recorder).
		for _, r := range rbac.EventRules() {
			if r.Verb == "create" {
				sets[0].rules = append(sets[0].rules, r)
			}
		}
	}
	if c.migrateFrom != "" {
		rules := rbac.OldLockRules(c.migrateFrom, c.election)
		if c.migrateNamespace == c.namespace {
			sets[0].rules = append(sets[0].rules, rules...)
		} else {
			sets = append(sets, permissionSet{namespace: c.migrateNamespace, rules: rules})
		}
	}
	if c.labelKey != "" {
		if c.podNamespace == c.namespace {
			sets[0].rules = append(sets[0].rules, rbac.PodLabelRules()...)
		} else {
			sets = append(sets, permissionSet{namespace: c.podNamespace, rules: rbac.PodLabelRules()})
		}
	}
	return sets
}

// roleName names the Role that the printed fix creates.
func roleName(election string) string { return "elector-" + election }

// missingPermissions returns, per namespace, the needed permissions that
// the API server's SelfSubjectAccessReviews deny. An *unreachableError
// means no answer; another error, that the server cannot check.
func missingPermissions(ctx context.Context, authz rbac.AccessReviewer, host string, sets []permissionSet) ([]permissionSet, error) {
	var out []permissionSet
	for _, set := range sets {
		rctx, cancel := context.WithTimeout(ctx, startupTimeout)
		missing, err := rbac.Check(rctx, authz, set.namespace, set.rules)
		cancel()
		var status apierrors.APIStatus
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && errors.As(err, &status):
			return nil, fmt.Errorf("unable to check permissions in namespace %q: %w", set.namespace, err)
		case err != nil:
			return nil, unreachable(host, err)
		case len(missing) > 0:
			out = append(out, permissionSet{namespace: set.namespace, rules: missing})
		}
	}
	return out, nil
}

// printMissing writes the summary line, then rbac.Explain's Role,
// RoleBinding and kubectl commands.
func printMissing(w io.Writer, subject rbac.Subject, namespace string, missing []rbac.Rule, role string) {
	names := make([]string, len(missing))
	for i, r := range missing {
		names[i] = r.String()
	}
	noun := "permissions"
	if len(missing) == 1 {
		noun = "permission"
	}
	fmt.Fprintf(w, "elector: %s lacks %d %s in namespace %s: %s\n\n%s",
		describeSubject(subject), len(missing), noun, namespace, strings.Join(names, ", "),
		rbac.Explain(namespace, subject, missing, role))
}

// describeSubject names the caller for the summary line.
func describeSubject(s rbac.Subject) string {
	switch {
	case s.Name == "":
		return "this client"
	case s.Kind == rbac.KindServiceAccount:
		return fmt.Sprintf("ServiceAccount %s/%s", s.Namespace, s.Name)
	default:
		return fmt.Sprintf("User %s", s.Name)
	}
}
