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

package rbac

import (
	"fmt"
	"regexp"
	"strings"
)

// Explain renders the multi-line fix for missing permissions: which
// identity lacks which rules in which namespace, then the minimal Role and
// RoleBinding as YAML, and the equivalent kubectl commands. It returns ""
// when nothing is missing. When subject is the zero Subject (identity
// unknown) the RoleBinding is left out and the reader is told how to find
// the identity.
//
// `kubectl create role` gives every --resource the same verbs and
// resource names, so when the Role needs different combinations the kubectl
// form creates one Role (and RoleBinding) per combination, named
// roleName-1, roleName-2, ...; together they grant exactly the same.
func Explain(namespace string, subject Subject, missing []Rule, roleName string) string {
	merged := mergeRules(missing)
	if len(merged) == 0 {
		return ""
	}
	known := subject.Name != ""

	var b strings.Builder
	fmt.Fprintf(&b, "%s lacks these permissions in namespace %q:\n", capitalize(subject.String()), namespace)
	seen := map[Rule]bool{}
	for _, r := range missing {
		r = r.normalize()
		if r.Verb == "" || r.Resource == "" || seen[r] {
			continue
		}
		seen[r] = true
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	if known {
		b.WriteString("\nGrant exactly these, and nothing cluster-wide, with this namespaced Role and\nRoleBinding (kubectl apply -f -):\n\n")
	} else {
		b.WriteString("\nGrant exactly these, and nothing cluster-wide, with this namespaced Role, bound\nwith a RoleBinding to the identity elector runs as (see kubectl auth whoami):\n\n")
	}
	b.WriteString(Role(namespace, roleName, missing))
	if known {
		b.WriteString("---\n")
		b.WriteString(RoleBinding(namespace, roleName, subject))
	}

	groups := kubectlGroups(merged)
	if len(groups) == 1 {
		b.WriteString("\nOr with kubectl:\n\n")
	} else {
		fmt.Fprintf(&b, "\nOr with kubectl, which gives all resources of a role the same verbs and names,\nas %d Roles that together grant the same:\n\n", len(groups))
	}
	for i, g := range groups {
		name := roleName
		if len(groups) > 1 {
			name = fmt.Sprintf("%s-%d", roleName, i+1)
		}
		cmd := []string{"kubectl", "create", "role", shellQuote(name), "--namespace=" + shellQuote(namespace)}
		for _, v := range g.verbs {
			cmd = append(cmd, "--verb="+shellQuote(v))
		}
		for _, r := range g.resources {
			cmd = append(cmd, "--resource="+shellQuote(r))
		}
		for _, n := range g.names {
			cmd = append(cmd, "--resource-name="+shellQuote(n))
		}
		b.WriteString("  " + strings.Join(cmd, " ") + "\n")
		if !known {
			continue
		}
		bind := []string{"kubectl", "create", "rolebinding", shellQuote(name), "--namespace=" + shellQuote(namespace), "--role=" + shellQuote(name)}
		if subject.Kind == KindServiceAccount {
			ns := subject.Namespace
			if ns == "" {
				ns = namespace
			}
			bind = append(bind, "--serviceaccount="+shellQuote(ns+":"+subject.Name))
		} else {
			bind = append(bind, "--user="+shellQuote(subject.Name))
		}
		b.WriteString("  " + strings.Join(bind, " ") + "\n")
	}
	return b.String()
}

// kubectlGroup is what one `kubectl create role` can express: the same
// verbs and resource names on several resources.
type kubectlGroup struct {
	verbs     []string
	names     []string
	resources []string // in kubectl's resource.group[/subresource] form
}

// kubectlGroups splits merged PolicyRules into kubectl-expressible groups,
// in order of first appearance.
func kubectlGroups(merged []policyRule) []kubectlGroup {
	var groups []kubectlGroup
	index := map[string]int{}
	for _, p := range merged {
		key := strings.Join(p.verbs, ",") + "\x00" + strings.Join(p.resourceNames, ",")
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, kubectlGroup{verbs: p.verbs, names: p.resourceNames})
		}
		groups[i].resources = append(groups[i].resources, qualifiedResource(p.group, p.resource))
	}
	return groups
}

// shellSafe matches words a POSIX shell passes through unchanged.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@+,-]+$`)

// shellQuote quotes s for a POSIX shell when needed.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// capitalize upper-cases the first byte of an ASCII sentence start.
func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
