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

package countproxy

import (
	"net/url"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, url string
		want        Key
	}{
		// What elector and client-go send for one Lease.
		{
			"GET", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"", "ns1", ResourceLeases, VerbGet},
		},
		{
			"PUT", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"", "ns1", ResourceLeases, VerbUpdate},
		},
		{
			"POST", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases",
			Key{"", "ns1", ResourceLeases, VerbCreate},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases?watch=1&fieldSelector=metadata.name%3Dlock&resourceVersion=7",
			Key{"", "ns1", ResourceLeases, VerbWatch},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases?watch=true",
			Key{"", "ns1", ResourceLeases, VerbWatch},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases?watch=false",
			Key{"", "ns1", ResourceLeases, VerbList},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases?limit=500",
			Key{"", "ns1", ResourceLeases, VerbList},
		},
		{
			"PATCH", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"", "ns1", ResourceLeases, VerbPatch},
		},
		{
			"DELETE", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"", "ns1", ResourceLeases, VerbDelete},
		},
		{
			"DELETE", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases",
			Key{"", "ns1", ResourceLeases, VerbDeleteCollection},
		},
		// A caller tag in front.
		{
			"PUT", "/c/cand-3/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"cand-3", "ns1", ResourceLeases, VerbUpdate},
		},
		{
			"GET", "/c/x/apis/coordination.k8s.io/v1/leases?watch=1",
			Key{"x", "", ResourceLeases, VerbWatch},
		},
		// Not Leases.
		{
			"POST", "/c/x/api/v1/namespaces/ns1/events",
			Key{"x", "ns1", ResourceOther, VerbCreate},
		},
		{
			"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
			Key{"", "", ResourceOther, VerbCreate},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1",
			Key{"", "", ResourceOther, VerbList},
		},
		{
			"GET", "/apis/coordination.k8s.io/v1beta1/namespaces/ns1/leasecandidates/a",
			Key{"", "ns1", ResourceOther, VerbGet},
		},
		{
			"GET", "/version",
			Key{"", "", ResourceOther, VerbList},
		},
		{
			"OPTIONS", "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/lock",
			Key{"", "ns1", ResourceLeases, VerbOther},
		},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Classify(tc.method, u); got != tc.want {
			t.Errorf("Classify(%s %s) = %+v, want %+v", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestSplitTag(t *testing.T) {
	for _, tc := range []struct{ in, tag, rest string }{
		{"/c/a/apis/x", "a", "/apis/x"},
		{"/c/a", "a", "/"},
		{"/apis/x", "", "/apis/x"},
		{"/cx/apis", "", "/cx/apis"},
	} {
		if tag, rest := splitTag(tc.in); tag != tc.tag || rest != tc.rest {
			t.Errorf("splitTag(%q) = %q, %q; want %q, %q", tc.in, tag, rest, tc.tag, tc.rest)
		}
	}
}

func TestCountsSubAndByVerb(t *testing.T) {
	lease := func(tag, verb string) Key { return Key{tag, "ns", ResourceLeases, verb} }
	base := Counts{lease("a", VerbGet): 3, lease("b", VerbUpdate): 5}
	now := Counts{
		lease("a", VerbGet): 10, lease("b", VerbUpdate): 5, lease("b", VerbWatch): 1,
		{"b", "ns", ResourceOther, VerbCreate}: 2,
	}
	d := now.Sub(base)
	if len(d) != 3 || d[lease("a", VerbGet)] != 7 || d[lease("b", VerbWatch)] != 1 {
		t.Fatalf("Sub = %v", d)
	}
	got := d.ByVerb(func(k Key) bool { return k.Resource == ResourceLeases })
	if len(got) != 2 || got[VerbGet] != 7 || got[VerbWatch] != 1 {
		t.Fatalf("ByVerb = %v", got)
	}
}
