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
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Attributes are the resource attributes of one access review.
type Attributes struct {
	Namespace   string
	Verb        string
	Group       string
	Resource    string
	Subresource string
	Name        string
}

// AccessReviewer answers one SelfSubjectAccessReview: may the caller do
// what a describes? It is a seam so that the checks need no typed client.
type AccessReviewer interface {
	ReviewAccess(ctx context.Context, a Attributes) (allowed bool, err error)
}

// checkConcurrency bounds the SelfSubjectAccessReviews Check runs at once.
const checkConcurrency = 4

// Check asks the API server, with one SelfSubjectAccessReview per rule
// (allowed to every authenticated user), whether the caller may do each of
// rules in namespace, and returns the denied rules in their input order.
// At most four reviews run at a time. Any failed review fails the whole
// check, since a partial answer would under-report what is missing.
func Check(ctx context.Context, c AccessReviewer, namespace string, rules []Rule) (missing []Rule, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	denied := make([]bool, len(rules))
	errs := make([]error, len(rules))
	sem := make(chan struct{}, checkConcurrency)
	var wg sync.WaitGroup
	for i, r := range rules {
		if err := ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("unable to check %s: %w", r, err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("unable to check %s: %w", r, ctx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			allowed, err := allowed(ctx, c, namespace, r)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			denied[i] = !allowed
		}()
	}
	wg.Wait()

	// Report the first real failure rather than the cancellations it caused.
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	for i, d := range denied {
		if d {
			missing = append(missing, rules[i])
		}
	}
	return missing, nil
}

// allowed runs one SelfSubjectAccessReview for r in namespace.
func allowed(ctx context.Context, c AccessReviewer, namespace string, r Rule) (bool, error) {
	r = r.normalize()
	resource, sub, _ := strings.Cut(r.Resource, "/")
	ok, err := c.ReviewAccess(ctx, Attributes{
		Namespace:   namespace,
		Verb:        r.Verb,
		Group:       r.Group,
		Resource:    resource,
		Subresource: sub,
		Name:        r.Name,
	})
	if err != nil {
		return false, fmt.Errorf("unable to check %s in namespace %q: %w", r, namespace, err)
	}
	return ok, nil
}

// SelfReviewer answers a SelfSubjectReview (authentication.k8s.io/v1,
// allowed to every authenticated user): the user name the caller is
// authenticated as.
type SelfReviewer interface {
	ReviewSelf(ctx context.Context) (username string, err error)
}

// WhoAmI asks the API server, with a SelfSubjectReview, which user name
// the caller is authenticated as. Use it when a 403 does not name the
// user; pass the result to SubjectFromUsername.
func WhoAmI(ctx context.Context, c SelfReviewer) (string, error) {
	user, err := c.ReviewSelf(ctx)
	if err != nil {
		return "", fmt.Errorf("unable to review own identity: %w", err)
	}
	if user == "" {
		return "", errors.New("unable to review own identity: API server returned no user name")
	}
	return user, nil
}
