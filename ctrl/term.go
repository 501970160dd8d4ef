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

package ctrl

import (
	"context"

	"github.com/elector-dev/elector"
)

// termKey is the context key of the term.
type termKey struct{}

func withTerm(ctx context.Context, t elector.Term) context.Context {
	return context.WithValue(ctx, termKey{}, t)
}

// TermFrom returns the term in which a leader-only runnable runs, from
// its context or any context derived from it, such as a reconciler's:
//
//	func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
//		term, _ := electorctrl.TermFrom(ctx)
//		// write with term.Token so that a store can reject a deposed leader
//	}
//
// ok is false outside a term: in runnables that need no election, or with
// LeaderElection off.
func TermFrom(ctx context.Context) (term elector.Term, ok bool) {
	term, ok = ctx.Value(termKey{}).(elector.Term)
	return term, ok
}
