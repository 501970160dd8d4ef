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
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	k8stesting "k8s.io/client-go/testing"
)

// typedAuthz adapts client-go's typed (fake) client to AccessReviewer.
type typedAuthz struct {
	c authorizationv1client.SelfSubjectAccessReviewsGetter
}

func (t typedAuthz) ReviewAccess(ctx context.Context, a Attributes) (bool, error) {
	res, err := t.c.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: a.Resource,
			Subresource: a.Subresource, Name: a.Name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

// typedAuthn adapts client-go's typed (fake) client to SelfReviewer.
type typedAuthn struct {
	c authenticationv1client.SelfSubjectReviewsGetter
}

func (t typedAuthn) ReviewSelf(ctx context.Context) (string, error) {
	res, err := t.c.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return res.Status.UserInfo.Username, nil
}

// fakeAuthz returns a fake clientset whose SelfSubjectAccessReviews allow
// every verb except those in denied, fail with failErr for verbs in fail,
// and record the attributes they were asked about.
func fakeAuthz(denied, fail map[string]bool, failErr error) (*fake.Clientset, *[]authorizationv1.ResourceAttributes) {
	var mu sync.Mutex
	var seen []authorizationv1.ResourceAttributes
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		attrs := review.Spec.ResourceAttributes
		mu.Lock()
		seen = append(seen, *attrs)
		mu.Unlock()
		if fail[attrs.Verb] {
			return true, nil, failErr
		}
		review.Status.Allowed = !denied[attrs.Verb]
		if !review.Status.Allowed {
			review.Status.Reason = "no RBAC policy matched"
		}
		return true, review, nil
	})
	return c, &seen
}

func TestCheck(t *testing.T) {
	rules := concat(LeaseRules("my-lock"), EventRules())
	tests := []struct {
		name        string
		denied      map[string]bool
		wantMissing []Rule
	}{
		{name: "everything allowed", denied: nil, wantMissing: nil},
		{
			name:   "update and patch denied",
			denied: map[string]bool{"update": true, "patch": true},
			wantMissing: []Rule{
				{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "my-lock"},
				{Group: "", Resource: "events", Verb: "patch"},
			},
		},
		{
			name:   "create denied for leases and events, in input order",
			denied: map[string]bool{"create": true},
			wantMissing: []Rule{
				{Group: CoordinationGroup, Resource: "leases", Verb: "create"},
				{Group: "", Resource: "events", Verb: "create"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := fakeAuthz(tt.denied, nil, nil)
			missing, err := Check(context.Background(), typedAuthz{c.AuthorizationV1()}, "team-a", rules)
			if err != nil {
				t.Fatalf("Check() error = %v", err)
			}
			if !reflect.DeepEqual(missing, tt.wantMissing) {
				t.Errorf("missing = %v, want %v", missing, tt.wantMissing)
			}
			// One review per rule, each with exactly the rule's attributes.
			var want []authorizationv1.ResourceAttributes
			for _, r := range rules {
				want = append(want, authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: r.Verb, Group: r.Group, Resource: r.Resource, Name: r.Name})
			}
			got := append([]authorizationv1.ResourceAttributes(nil), *seen...)
			sortAttrs(got)
			sortAttrs(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("reviewed attributes =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func sortAttrs(a []authorizationv1.ResourceAttributes) {
	sort.Slice(a, func(i, j int) bool {
		ki := a[i].Group + "/" + a[i].Resource + "/" + a[i].Name + "/" + a[i].Verb
		kj := a[j].Group + "/" + a[j].Resource + "/" + a[j].Name + "/" + a[j].Verb
		return ki < kj
	})
}

func TestCheckSubresourceAndCreateName(t *testing.T) {
	c, seen := fakeAuthz(map[string]bool{"patch": true}, nil, nil)
	rules := []Rule{
		{Group: CoordinationGroup, Resource: "leases/status", Verb: "patch", Name: "l"},
	}
	missing, err := Check(context.Background(), typedAuthz{c.AuthorizationV1()}, "n", rules)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(missing, rules) {
		t.Errorf("missing = %v, want %v", missing, rules)
	}
	want := authorizationv1.ResourceAttributes{Namespace: "n", Verb: "patch", Group: CoordinationGroup, Resource: "leases", Subresource: "status", Name: "l"}
	if len(*seen) != 1 || (*seen)[0] != want {
		t.Errorf("reviewed %+v, want [%+v]", *seen, want)
	}

	c, seen = fakeAuthz(nil, nil, nil)
	if _, err := Check(context.Background(), typedAuthz{c.AuthorizationV1()}, "n", []Rule{{Group: CoordinationGroup, Resource: "leases", Verb: "create", Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 1 || (*seen)[0].Name != "" {
		t.Errorf("create was reviewed with a name: %+v", *seen)
	}
}

func TestCheckError(t *testing.T) {
	boom := errors.New("connection refused")
	c, _ := fakeAuthz(nil, map[string]bool{"watch": true}, boom)
	missing, err := Check(context.Background(), typedAuthz{c.AuthorizationV1()}, "team-a", LeaseRules("my-lock"))
	if !errors.Is(err, boom) {
		t.Fatalf("Check() error = %v, want it to wrap %v", err, boom)
	}
	const wantMsg = `unable to check watch leases.coordination.k8s.io "my-lock" in namespace "team-a": connection refused`
	if err.Error() != wantMsg {
		t.Errorf("error = %q, want %q", err.Error(), wantMsg)
	}
	if missing != nil {
		t.Errorf("missing = %v, want nil on error", missing)
	}
}

func TestCheckCanceled(t *testing.T) {
	c, _ := fakeAuthz(nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Check(ctx, typedAuthz{c.AuthorizationV1()}, "n", LeaseRules("l"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check() error = %v, want context.Canceled", err)
	}
}

// slowReviews is a SelfSubjectAccessReviewsGetter that measures how many
// reviews run at once. (The fake clientset serializes its reactors, so it
// cannot show concurrency.)
type slowReviews struct {
	inFlight, max, calls atomic.Int32
}

func (s *slowReviews) ReviewAccess(_ context.Context, a Attributes) (bool, error) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.max.Load()
		if n <= m || s.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	return a.Verb != "delete", nil
}

func TestCheckConcurrencyBound(t *testing.T) {
	var rules []Rule
	for i := 0; i < 20; i++ {
		rules = append(rules, Rule{Resource: "pods", Verb: "get", Name: string(rune('a' + i))})
	}
	rules = append(rules, Rule{Resource: "pods", Verb: "delete"})
	s := &slowReviews{}
	missing, err := Check(context.Background(), s, "n", rules)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Rule{{Resource: "pods", Verb: "delete"}}; !reflect.DeepEqual(missing, want) {
		t.Errorf("missing = %v, want %v", missing, want)
	}
	if got := s.calls.Load(); got != int32(len(rules)) {
		t.Errorf("%d reviews, want %d", got, len(rules))
	}
	if got := s.max.Load(); got < 2 || got > 4 {
		t.Errorf("max concurrent reviews = %d, want between 2 and 4", got)
	}
}

// blockingReviews blocks reviews of "get" until their context ends and
// fails reviews of "update" with err.
type blockingReviews struct{ err error }

func (b blockingReviews) ReviewAccess(ctx context.Context, a Attributes) (bool, error) {
	switch a.Verb {
	case "get":
		<-ctx.Done()
		return false, ctx.Err()
	case "update":
		return false, b.err
	}
	return true, nil
}

func TestCheckReportsCauseNotCancellation(t *testing.T) {
	boom := errors.New("etcdserver: request timed out")
	rules := []Rule{
		{Resource: "pods", Verb: "get"},
		{Resource: "pods", Verb: "update"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Check(ctx, blockingReviews{err: boom}, "n", rules)
	if !errors.Is(err, boom) {
		t.Fatalf("Check() error = %v, want the failure %v, not the cancellation it caused", err, boom)
	}
}

func TestWhoAmI(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		r := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.SelfSubjectReview).DeepCopy()
		r.Status.UserInfo.Username = "system:serviceaccount:team-a:elector"
		return true, r, nil
	})
	got, err := WhoAmI(context.Background(), typedAuthn{c.AuthenticationV1()})
	if err != nil {
		t.Fatal(err)
	}
	if got != "system:serviceaccount:team-a:elector" {
		t.Errorf("WhoAmI() = %q", got)
	}

	failing := fake.NewClientset()
	failing.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("not found")
	})
	if _, err := WhoAmI(context.Background(), typedAuthn{failing.AuthenticationV1()}); err == nil || err.Error() != "unable to review own identity: not found" {
		t.Errorf("WhoAmI() error = %v", err)
	}
}
