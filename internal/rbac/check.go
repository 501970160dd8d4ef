package rbac

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// checkConcurrency bounds the SelfSubjectAccessReviews Check runs at once.
const checkConcurrency = 4

// Check asks the API server, with one SelfSubjectAccessReview per rule
// (allowed to every authenticated user), whether the caller may do each of
// rules in namespace, and returns the denied rules in their input order.
// At most four reviews run at a time. Any failed review fails the whole
// check, since a partial answer would under-report what is missing.
func Check(ctx context.Context, c authorizationv1client.SelfSubjectAccessReviewsGetter, namespace string, rules []Rule) (missing []Rule, err error) {
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
func allowed(ctx context.Context, c authorizationv1client.SelfSubjectAccessReviewsGetter, namespace string, r Rule) (bool, error) {
	r = r.normalize()
	resource, sub, _ := strings.Cut(r.Resource, "/")
	review := &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace:   namespace,
				Verb:        r.Verb,
				Group:       r.Group,
				Resource:    resource,
				Subresource: sub,
				Name:        r.Name,
			},
		},
	}
	res, err := c.SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("unable to check %s in namespace %q: %w", r, namespace, err)
	}
	return res.Status.Allowed, nil
}

// WhoAmI asks the API server, with a SelfSubjectReview (authentication.k8s.io/v1,
// allowed to every authenticated user), which user name the caller is
// authenticated as. Use it when a 403 does not name the user; pass the
// result to SubjectFromUsername.
func WhoAmI(ctx context.Context, c authenticationv1client.SelfSubjectReviewsGetter) (string, error) {
	res, err := c.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("unable to review own identity: %w", err)
	}
	if res.Status.UserInfo.Username == "" {
		return "", errors.New("unable to review own identity: API server returned no user name")
	}
	return res.Status.UserInfo.Username, nil
}
