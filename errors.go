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

package elector

import (
	"errors"
	"fmt"
	"math"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/elector-dev/elector/internal/rbac"
)

// ErrTokensExhausted means the Lease's leaseTransitions has reached the
// largest value the API can store (2^31−1), so no higher fencing token can
// be written. No retry can fix it; see the error's message for what to do.
var ErrTokensExhausted = errors.New("elector: fencing tokens exhausted")

// tokensExhausted explains ErrTokensExhausted for one Lease.
func (e *Elector) tokensExhausted() error {
	return fmt.Errorf("%w: Lease %s/%s has leaseTransitions %d, the largest a Lease can hold; stop every candidate, delete the Lease (tokens restart at 0) and reset the highest token your fencing store accepts",
		ErrTokensExhausted, e.cfg.Namespace, e.cfg.Name, int32(math.MaxInt32))
}

// isDenied reports a request the API server refused for who we are (403)
// or for our credentials (401). Whether that is final depends on whether
// this candidate ever had access: see Config.ForbiddenTimeout.
func isDenied(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
}

// ForbiddenError reports that the API server denied a request for lack of
// RBAC permissions. Its message names the verb, resource, namespace, Lease
// and the identity the API server saw; Fix holds the minimal Role and
// RoleBinding that grant what the election needs.
type ForbiddenError struct {
	Verb      string
	Resource  string // e.g. "leases.coordination.k8s.io"
	Namespace string
	Name      string
	// User is the identity the API server saw, e.g.
	// "system:serviceaccount:team-a:my-app"; empty when it did not say.
	User string
	// Fix is a multi-line explanation with the Role and RoleBinding YAML
	// and the equivalent kubectl commands.
	Fix string
	Err error
}

func (e *ForbiddenError) Error() string {
	who := e.User
	if who == "" {
		who = "this client"
	}
	return fmt.Sprintf("elector: %s may not %s %s %q in namespace %q (RBAC): grant the Role printed by ForbiddenError.Fix",
		who, e.Verb, e.Resource, e.Name, e.Namespace)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// apiError turns a failed request into a clear error: a *ForbiddenError
// for a 403, else the error wrapped with what was being done. verb is what
// this elector was doing when the request failed.
func (e *Elector) apiError(err error, verb string) error {
	f, ok := rbac.ParseForbidden(err)
	if !ok {
		return fmt.Errorf("elector: unable to %s Lease %s/%s: %w", verb, e.cfg.Namespace, e.cfg.Name, err)
	}
	if f.Verb == "" {
		f.Verb = verb
	}
	rules := rbac.LeaseRules(e.cfg.Name)
	if e.cfg.Watch != nil {
		rules = rbac.SharedLeaseRules()
	}
	ns := f.Namespace
	if ns == "" {
		ns = e.cfg.Namespace
	}
	return &ForbiddenError{
		Verb:      f.Verb,
		Resource:  "leases.coordination.k8s.io",
		Namespace: ns,
		Name:      e.cfg.Name,
		User:      f.User,
		Fix:       rbac.Explain(ns, rbac.SubjectFromUsername(f.User), rules, "elector-"+e.cfg.Name),
		Err:       err,
	}
}
