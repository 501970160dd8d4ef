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
	"encoding/json"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/migrate"
)

// The sidecar talks to the API server through client-go's REST layer with
// a scheme that knows coordination.k8s.io/v1 only. Everything else it
// sends (Events, Pod label patches, access reviews) is plain JSON. It does
// not import client-go's typed clients or k8s.io/api/core/v1: each typed
// client package pulls in the scheme of every API group, which made the
// binary 27 MiB and the idle sidecar 25 MiB of RSS.

var (
	apiScheme      = runtime.NewScheme()
	apiCodecs      = serializer.NewCodecFactory(apiScheme)
	parameterCodec = runtime.NewParameterCodec(apiScheme)
)

func init() {
	if err := coordinationv1.AddToScheme(apiScheme); err != nil {
		panic(err) // a programming error: the scheme is static
	}
	metav1.AddToGroupVersion(apiScheme, coordinationv1.SchemeGroupVersion)
}

// api is the sidecar's lean client: Leases (typed, for the library) and
// a few JSON requests, over one HTTP client.
type api struct {
	coordination rest.Interface // /apis/coordination.k8s.io/v1
	core         rest.Interface // /api/v1
	raw          rest.Interface // absolute paths (authentication, authorization)
}

func newAPI(rc *rest.Config) (*api, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	client := func(apiPath string, gv *schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(rc)
		c.APIPath = apiPath
		c.GroupVersion = gv
		c.NegotiatedSerializer = apiCodecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		c.AcceptContentTypes = runtime.ContentTypeJSON
		if gv == nil {
			return rest.UnversionedRESTClientForConfigAndClient(c, hc)
		}
		return rest.RESTClientForConfigAndClient(c, hc)
	}
	a := &api{}
	if a.coordination, err = client("/apis", &coordinationv1.SchemeGroupVersion); err != nil {
		return nil, err
	}
	if a.core, err = client("/api", &schema.GroupVersion{Version: "v1"}); err != nil {
		return nil, err
	}
	if a.raw, err = client("", nil); err != nil {
		return nil, err
	}
	return a, nil
}

// Leases returns the Lease client of namespace.
func (a *api) Leases(namespace string) elector.LeaseClient {
	return &leases{c: a.coordination, ns: namespace}
}

// Objects returns the old-lock objects for migration mode.
func (a *api) Objects() migrate.Objects { return migrate.REST(a.core) }

// leases implements elector.LeaseClient as client-go's typed client does.
type leases struct {
	c  rest.Interface
	ns string
}

func (l *leases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := l.c.Get().Namespace(l.ns).Resource("leases").Name(name).
		VersionedParams(&opts, parameterCodec).Do(ctx).Into(out)
	return out, err
}

func (l *leases) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := l.c.Post().Namespace(l.ns).Resource("leases").
		VersionedParams(&opts, parameterCodec).Body(lease).Do(ctx).Into(out)
	return out, err
}

func (l *leases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := l.c.Put().Namespace(l.ns).Resource("leases").Name(lease.Name).
		VersionedParams(&opts, parameterCodec).Body(lease).Do(ctx).Into(out)
	return out, err
}

func (l *leases) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	out := &coordinationv1.LeaseList{}
	err := l.c.Get().Namespace(l.ns).Resource("leases").
		VersionedParams(&opts, parameterCodec).Timeout(timeoutOf(opts)).Do(ctx).Into(out)
	return out, err
}

func (l *leases) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return l.c.Get().Namespace(l.ns).Resource("leases").
		VersionedParams(&opts, parameterCodec).Timeout(timeoutOf(opts)).Watch(ctx)
}

func timeoutOf(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}

// ReviewAccess runs a SelfSubjectAccessReview (rbac.AccessReviewer).
func (a *api) ReviewAccess(ctx context.Context, attrs rbac.Attributes) (bool, error) {
	type resourceAttributes struct {
		Namespace   string `json:"namespace,omitempty"`
		Verb        string `json:"verb,omitempty"`
		Group       string `json:"group,omitempty"`
		Resource    string `json:"resource,omitempty"`
		Subresource string `json:"subresource,omitempty"`
		Name        string `json:"name,omitempty"`
	}
	req := map[string]any{
		"apiVersion": "authorization.k8s.io/v1",
		"kind":       "SelfSubjectAccessReview",
		"spec": map[string]any{"resourceAttributes": resourceAttributes{
			Namespace: attrs.Namespace, Verb: attrs.Verb, Group: attrs.Group,
			Resource: attrs.Resource, Subresource: attrs.Subresource, Name: attrs.Name,
		}},
	}
	var res struct {
		Status struct {
			Allowed bool `json:"allowed"`
		} `json:"status"`
	}
	if err := a.post(ctx, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", req, &res); err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

// ReviewSelf runs a SelfSubjectReview (rbac.SelfReviewer).
func (a *api) ReviewSelf(ctx context.Context) (string, error) {
	req := map[string]string{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
	var res struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := a.post(ctx, "/apis/authentication.k8s.io/v1/selfsubjectreviews", req, &res); err != nil {
		return "", err
	}
	return res.Status.UserInfo.Username, nil
}

// post sends body as JSON to path and decodes the answer into out.
func (a *api) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	raw, err := rawOf(a.raw.Post().AbsPath(path).SetHeader("Content-Type", runtime.ContentTypeJSON).Body(b).Do(ctx))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("unable to decode the answer of %s: %w", path, err)
	}
	return nil
}

// event is the part of a core/v1 Event the sidecar writes.
type event struct {
	APIVersion          string            `json:"apiVersion"`
	Kind                string            `json:"kind"`
	Metadata            metav1.ObjectMeta `json:"metadata"`
	InvolvedObject      objectReference   `json:"involvedObject"`
	Reason              string            `json:"reason"`
	Message             string            `json:"message"`
	Type                string            `json:"type"`
	Source              eventSource       `json:"source"`
	FirstTimestamp      metav1.Time       `json:"firstTimestamp"`
	LastTimestamp       metav1.Time       `json:"lastTimestamp"`
	Count               int32             `json:"count"`
	ReportingController string            `json:"reportingComponent"`
	ReportingInstance   string            `json:"reportingInstance"`
}

type objectReference struct {
	Kind            string    `json:"kind"`
	APIVersion      string    `json:"apiVersion"`
	Namespace       string    `json:"namespace"`
	Name            string    `json:"name"`
	UID             types.UID `json:"uid"`
	ResourceVersion string    `json:"resourceVersion"`
}

type eventSource struct {
	Component string `json:"component"`
}

// CreateEvent creates ev in its namespace (eventWriter).
func (a *api) CreateEvent(ctx context.Context, ev *event) error {
	ev.APIVersion, ev.Kind = "v1", "Event"
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return a.core.Post().Namespace(ev.Metadata.Namespace).Resource("events").
		SetHeader("Content-Type", runtime.ContentTypeJSON).Body(b).Do(ctx).Error()
}

// PodNames lists the names of the Pods in namespace that match selector
// (podLabeler).
func (a *api) PodNames(ctx context.Context, namespace, selector string) ([]string, error) {
	raw, err := rawOf(a.core.Get().Namespace(namespace).Resource("pods").
		Param("labelSelector", selector).
		// Only the names are needed: ask for metadata, not whole Pods.
		SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json").
		Do(ctx))
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("unable to decode the pod list: %w", err)
	}
	names := make([]string, len(list.Items))
	for i, p := range list.Items {
		names[i] = p.Metadata.Name
	}
	return names, nil
}

// PatchPod applies a JSON merge patch to a Pod (podLabeler).
func (a *api) PatchPod(ctx context.Context, namespace, name string, patch []byte) error {
	return a.core.Patch(types.MergePatchType).Namespace(namespace).Resource("pods").Name(name).
		Param("fieldManager", fieldManager).Body(patch).Do(ctx).Error()
}

// rawOf returns a request's body, or its error decoded from the API
// server's Status: Raw alone returns a generic error without the
// server's message, which names the missing permission.
func rawOf(res rest.Result) ([]byte, error) {
	b, err := res.Raw()
	if err != nil {
		if serr := res.Error(); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	return b, nil
}
