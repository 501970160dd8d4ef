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
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/internal/rbac"
)

// whyRole names the Role printed when the operator may not run why.
const whyRole = "elector-why"

func (a *app) whyCommand() *cobra.Command {
	var subject string
	var events, leaderLabel bool
	cmd := &cobra.Command{
		Use:   "why NAME --for system:serviceaccount:NS:SA",
		Short: "Check whether a ServiceAccount may run elector for Lease NAME, and print the Role that fixes what is missing",
		Long: `Ask the API server, with one LocalSubjectAccessReview per permission, whether the
subject may do everything the elector sidecar does for the Lease NAME in the
namespace (-n): create leases; get, watch and update the Lease NAME; create
events (unless --events=false); list and patch pods in the ServiceAccount's
namespace with --leader-label. A ServiceAccount is reviewed with the groups
its tokens carry: system:serviceaccounts, system:serviceaccounts:NS and
system:authenticated. Prints each answer with the authorizer's reason, then,
if anything is missing, the namespaced Role and RoleBinding that grant it
(exit 9).

--for names the subject to check; kubectl's own --as still means
impersonation (the reviews are then made as that user).`,
		Example: `  kubectl elector why my-controller -n team-a --for system:serviceaccount:team-a:my-controller`,
		Args:    exactArgs(1, "the Lease NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if subject == "" {
				return usageErr(cmd, "missing --for: name the subject, such as --for=system:serviceaccount:NAMESPACE:NAME")
			}
			s := rbac.SubjectFromUsername(subject)
			if strings.HasPrefix(subject, "system:serviceaccount:") && s.Kind != rbac.KindServiceAccount {
				return usageErr(cmd, "--for=%s: want system:serviceaccount:NAMESPACE:NAME", subject)
			}
			return a.why(cmd, args[0], s, events, leaderLabel)
		},
	}
	cmd.Flags().StringVar(&subject, "for", "", "the subject to check: system:serviceaccount:NS:SA, or a user name")
	cmd.Flags().BoolVar(&events, "events", true, "the sidecar writes Events on the Lease (its --events, default true)")
	cmd.Flags().BoolVar(&leaderLabel, "leader-label", false, "the sidecar labels the leader's Pod (its --leader-label)")
	return cmd
}

// check is one reviewed permission.
type check struct {
	Namespace string
	Rule      rbac.Rule
	Allowed   bool
	Reason    string
}

// sidecarNeeds is, per namespace, what the sidecar needs for Lease name in
// ns, run as subject (the same rules it checks at start).
func sidecarNeeds(ns, name string, subject rbac.Subject, events, leaderLabel bool) []check {
	var out []check
	add := func(ns string, rules []rbac.Rule) {
		for _, r := range rules {
			out = append(out, check{Namespace: ns, Rule: r})
		}
	}
	add(ns, rbac.LeaseRules(name))
	if events {
		// The sidecar writes each Event once with create; it never patches.
		for _, r := range rbac.EventRules() {
			if r.Verb == "create" {
				add(ns, []rbac.Rule{r})
			}
		}
	}
	if leaderLabel {
		podNS := subject.Namespace
		if podNS == "" {
			podNS = ns
		}
		add(podNS, rbac.PodLabelRules())
	}
	return out
}

// groupsOf are the groups the API server gives the subject's requests:
// those of a ServiceAccount token; for a user, only the group every
// authenticated user has (others are not known here).
func groupsOf(s rbac.Subject) []string {
	if s.Kind == rbac.KindServiceAccount {
		return []string{"system:serviceaccounts", "system:serviceaccounts:" + s.Namespace, "system:authenticated"}
	}
	return []string{"system:authenticated"}
}

func (a *app) why(cmd *cobra.Command, name string, subject rbac.Subject, events, leaderLabel bool) error {
	ctx := cmd.Context()
	k, err := a.client()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	checks := sidecarNeeds(ns, name, subject, events, leaderLabel)
	groups := groupsOf(subject)
	for i := range checks {
		c := &checks[i]
		r := c.Rule
		resource, sub, _ := strings.Cut(r.Resource, "/")
		objName := r.Name
		if r.Verb == "create" {
			objName = ""
		}
		review := &authorizationv1.LocalSubjectAccessReview{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace},
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   subject.Username(),
				Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: c.Namespace, Verb: r.Verb, Group: r.Group,
					Resource: resource, Subresource: sub, Name: objName,
				},
			},
		}
		res, err := k.authz.LocalSubjectAccessReviews(c.Namespace).Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return a.apiErr(ctx, err, need{
				namespace: c.Namespace, role: whyRole,
				what:  "review the permissions of " + subject.Username(),
				rules: []rbac.Rule{{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews", Verb: "create"}},
			})
		}
		c.Allowed = res.Status.Allowed && !res.Status.Denied
		c.Reason = res.Status.Reason
		if res.Status.EvaluationError != "" {
			c.Reason = strings.TrimSpace(c.Reason + " (evaluation error: " + res.Status.EvaluationError + ")")
		}
	}
	out, complete := renderWhy(ns, name, subject, groups, checks)
	if _, err := io.WriteString(a.stdout, out); err != nil {
		return fmt.Errorf("unable to write the answer: %w", err)
	}
	if !complete {
		return &exitError{code: ExitMissing, msg: fmt.Sprintf("%s: %s cannot run elector for Lease %s/%s; apply the Role and RoleBinding above", displayName, describeSubject(subject), ns, name)}
	}
	return nil
}

// renderWhy renders the answers and, if any permission is missing, the
// fix; complete reports that nothing is missing.
func renderWhy(ns, name string, subject rbac.Subject, groups []string, checks []check) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "Can %s run elector for Lease %s/%s?\n", describeSubject(subject), ns, name)
	fmt.Fprintf(&b, "LocalSubjectAccessReviews as %s, groups %s:\n\n", subject.Username(), strings.Join(groups, ", "))
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "  ALLOWED\tNAMESPACE\tPERMISSION\tREASON")
	missing := map[string][]rbac.Rule{}
	var order []string
	for _, c := range checks {
		yes := "yes"
		if !c.Allowed {
			yes = "NO"
			if _, ok := missing[c.Namespace]; !ok {
				order = append(order, c.Namespace)
			}
			missing[c.Namespace] = append(missing[c.Namespace], c.Rule)
		}
		r := c.Rule
		if r.Verb == "create" {
			r.Name = ""
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", yes, c.Namespace, r, orNone(c.Reason))
	}
	w.Flush()
	if len(order) == 0 {
		fmt.Fprintf(&b, "\nYes: %s has every permission the elector sidecar needs for this Lease.\n", describeSubject(subject))
		return b.String(), true
	}
	for _, mns := range order {
		b.WriteString("\n")
		b.WriteString(rbac.Explain(mns, subject, missing[mns], "elector-"+name))
	}
	return b.String(), false
}
