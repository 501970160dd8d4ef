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
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// policyRule is one merged RBAC PolicyRule with a single group and resource.
type policyRule struct {
	group         string
	resource      string
	resourceNames []string // sorted; empty means all objects
	verbs         []string // in verbOrder
}

// mergeRules turns single-verb rules into the fewest PolicyRules that grant
// exactly the same permissions, in a stable order:
//
//   - duplicates and rules without a verb or resource are dropped;
//   - names are removed from verbs RBAC cannot limit by name (see
//     Rule.normalize);
//   - a named rule is dropped when the same verb is already granted on the
//     whole resource;
//   - rules on the same group, resource and name are merged into one rule
//     with several verbs;
//   - named rules on the same group and resource with the same verbs are
//     merged into one rule with several resourceNames.
//
// The result is sorted by group, resource, then unnamed before named rules.
func mergeRules(rules []Rule) []policyRule {
	type grn struct{ group, resource, name string }
	unnamed := map[Rule]bool{}
	for i := range rules {
		if r := rules[i].normalize(); r.Name == "" {
			unnamed[r] = true
		}
	}
	verbsOf := map[grn]map[string]bool{}
	for _, r := range rules {
		r = r.normalize()
		if r.Verb == "" || r.Resource == "" {
			continue
		}
		if r.Name != "" && unnamed[Rule{Group: r.Group, Resource: r.Resource, Verb: r.Verb}] {
			continue
		}
		k := grn{r.Group, r.Resource, r.Name}
		if verbsOf[k] == nil {
			verbsOf[k] = map[string]bool{}
		}
		verbsOf[k][r.Verb] = true
	}

	type grv struct{ group, resource, verbs string }
	byVerbs := map[grv]*policyRule{}
	var out []*policyRule
	for k, set := range verbsOf {
		verbs := make([]string, 0, len(set))
		for v := range set {
			verbs = append(verbs, v)
		}
		sortVerbs(verbs)
		if k.name == "" {
			out = append(out, &policyRule{group: k.group, resource: k.resource, verbs: verbs})
			continue
		}
		key := grv{k.group, k.resource, strings.Join(verbs, ",")}
		p := byVerbs[key]
		if p == nil {
			p = &policyRule{group: k.group, resource: k.resource, verbs: verbs}
			byVerbs[key] = p
			out = append(out, p)
		}
		p.resourceNames = append(p.resourceNames, k.name)
	}

	res := make([]policyRule, 0, len(out))
	for _, p := range out {
		sort.Strings(p.resourceNames)
		res = append(res, *p)
	}
	sort.Slice(res, func(i, j int) bool {
		a, b := res[i], res[j]
		if a.group != b.group {
			return a.group < b.group
		}
		if a.resource != b.resource {
			return a.resource < b.resource
		}
		an, bn := strings.Join(a.resourceNames, "\x00"), strings.Join(b.resourceNames, "\x00")
		if an != bn {
			return an < bn // "" (all objects) sorts first
		}
		return strings.Join(a.verbs, ",") < strings.Join(b.verbs, ",")
	})
	return res
}

// Role renders a namespaced rbac.authorization.k8s.io/v1 Role named
// roleName in namespace granting exactly rules, as YAML. Rules are merged
// into as few PolicyRules as possible: rules on the same group, resource
// and name share one PolicyRule; named rules on the same group and resource
// with the same verbs share its resourceNames; name-limited rules already
// covered by an unlimited one are dropped; names on create and
// deletecollection, which RBAC cannot limit by name, are removed. The output
// is stable: rules sorted by group, resource and names, verbs in the order
// get, list, watch, create, update, patch, delete, deletecollection, then
// any others alphabetically. Rules with an empty Verb or Resource are
// ignored.
func Role(namespace, roleName string, rules []Rule) string {
	var b strings.Builder
	b.WriteString("apiVersion: rbac.authorization.k8s.io/v1\n")
	b.WriteString("kind: Role\n")
	b.WriteString("metadata:\n")
	b.WriteString("  name: " + scalar(roleName) + "\n")
	b.WriteString("  namespace: " + scalar(namespace) + "\n")
	merged := mergeRules(rules)
	if len(merged) == 0 {
		b.WriteString("rules: []\n")
		return b.String()
	}
	b.WriteString("rules:\n")
	for _, p := range merged {
		b.WriteString("- apiGroups: " + flow([]string{p.group}) + "\n")
		b.WriteString("  resources: " + flow([]string{p.resource}) + "\n")
		if len(p.resourceNames) > 0 {
			b.WriteString("  resourceNames: " + flow(p.resourceNames) + "\n")
		}
		b.WriteString("  verbs: " + flow(p.verbs) + "\n")
	}
	return b.String()
}

// Subject kinds understood by RoleBinding.
const (
	// KindServiceAccount is a Kubernetes ServiceAccount identity.
	KindServiceAccount = "ServiceAccount"
	// KindUser is any other authenticated user name.
	KindUser = "User"
)

// serviceAccountPrefix starts every ServiceAccount user name.
const serviceAccountPrefix = "system:serviceaccount:"

// Subject is the identity a RoleBinding grants a Role to: Kind is
// KindServiceAccount (with Namespace and Name) or KindUser (with Name only).
// The zero Subject means the identity is unknown.
type Subject struct {
	Kind      string
	Namespace string
	Name      string
}

// SubjectFromUsername turns an authenticated user name into a Subject:
// "system:serviceaccount:<ns>:<name>" becomes the ServiceAccount ns/name,
// any other non-empty name a User, and "" the zero (unknown) Subject.
func SubjectFromUsername(username string) Subject {
	if username == "" {
		return Subject{}
	}
	if rest, ok := strings.CutPrefix(username, serviceAccountPrefix); ok {
		ns, name, ok := strings.Cut(rest, ":")
		if ok && ns != "" && name != "" && !strings.Contains(name, ":") {
			return Subject{Kind: KindServiceAccount, Namespace: ns, Name: name}
		}
	}
	return Subject{Kind: KindUser, Name: username}
}

// Username returns the user name the API server reports for s: the inverse
// of SubjectFromUsername.
func (s Subject) Username() string {
	if s.Kind == KindServiceAccount {
		return serviceAccountPrefix + s.Namespace + ":" + s.Name
	}
	return s.Name
}

// String renders s for people: `ServiceAccount "ns/name"`, `User "alice"`,
// or "the caller (identity unknown)" for the zero Subject.
func (s Subject) String() string {
	switch {
	case s.Name == "":
		return "the caller (identity unknown)"
	case s.Kind == KindServiceAccount:
		return KindServiceAccount + " " + strconv.Quote(s.Namespace+"/"+s.Name)
	default:
		return KindUser + " " + strconv.Quote(s.Name)
	}
}

// RoleBinding renders a namespaced rbac.authorization.k8s.io/v1
// RoleBinding, named like the Role, that grants the Role roleName in
// namespace to subject. A ServiceAccount subject without a namespace is
// taken to live in namespace; any kind other than ServiceAccount is bound
// as a User.
func RoleBinding(namespace, roleName string, subject Subject) string {
	var b strings.Builder
	b.WriteString("apiVersion: rbac.authorization.k8s.io/v1\n")
	b.WriteString("kind: RoleBinding\n")
	b.WriteString("metadata:\n")
	b.WriteString("  name: " + scalar(roleName) + "\n")
	b.WriteString("  namespace: " + scalar(namespace) + "\n")
	b.WriteString("roleRef:\n")
	b.WriteString("  apiGroup: rbac.authorization.k8s.io\n")
	b.WriteString("  kind: Role\n")
	b.WriteString("  name: " + scalar(roleName) + "\n")
	b.WriteString("subjects:\n")
	if subject.Kind == KindServiceAccount {
		ns := subject.Namespace
		if ns == "" {
			ns = namespace
		}
		b.WriteString("- kind: ServiceAccount\n")
		b.WriteString("  name: " + scalar(subject.Name) + "\n")
		b.WriteString("  namespace: " + scalar(ns) + "\n")
	} else {
		b.WriteString("- apiGroup: rbac.authorization.k8s.io\n")
		b.WriteString("  kind: User\n")
		b.WriteString("  name: " + scalar(subject.Name) + "\n")
	}
	return b.String()
}

// plainScalar matches strings that YAML reads back as the same string when
// written unquoted: lower-case DNS-like names starting with a letter.
var plainScalar = regexp.MustCompile(`^[a-z][-a-z0-9.]*$`)

// yamlKeywords are plain words YAML 1.1 would read as booleans or null.
var yamlKeywords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

// scalar renders s as a YAML scalar, plain when that is unambiguous and
// double-quoted otherwise.
func scalar(s string) string {
	if plainScalar.MatchString(s) && !yamlKeywords[s] && !strings.HasSuffix(s, ".") {
		return s
	}
	return quote(s)
}

// flow renders ss as a YAML flow sequence of double-quoted strings, the
// style of the Kubernetes RBAC documentation: ["get", "update"].
func flow(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quote double-quotes s; Go's escapes are all valid in YAML double-quoted
// scalars.
func quote(s string) string {
	return strconv.Quote(s)
}
