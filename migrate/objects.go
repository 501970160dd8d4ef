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

package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// Objects reads and writes the object that carries an old lock: an
// Endpoints or ConfigMap in the core API group. Only its metadata matters.
// [REST] implements it over any core/v1 REST client.
type Objects interface {
	// Get returns the object's metadata.
	Get(ctx context.Context, kind Kind, namespace, name string) (*metav1.ObjectMeta, error)
	// Create creates an object of kind with meta (name, namespace,
	// annotations) and nothing else, and returns its metadata.
	Create(ctx context.Context, kind Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error)
	// SetAnnotation sets one annotation on the object that meta names,
	// leaving the rest of it alone, on the condition that the object
	// still has meta.ResourceVersion: a concurrent writer makes it fail
	// with a 409 Conflict. It returns the updated metadata.
	SetAnnotation(ctx context.Context, kind Kind, meta *metav1.ObjectMeta, key, value string) (*metav1.ObjectMeta, error)
}

// REST returns Objects that use c, a REST client of the core API group
// (/api/v1), e.g. clientset.CoreV1().RESTClient(). It sends and reads
// plain JSON, so a program that uses it needs neither client-go's typed
// core/v1 client nor the k8s.io/api/core/v1 types (several MiB of binary).
// It uses the verbs of rbac's old-lock Role: get, create and update.
func REST(c rest.Interface) Objects { return &restObjects{c: c, last: map[string][]byte{}} }

type restObjects struct {
	c rest.Interface

	mu sync.Mutex
	// last is the last object read or written, per kind/namespace/name,
	// so that SetAnnotation writes back the whole object (an update
	// replaces it) without reading it again.
	last map[string][]byte
}

// resource maps a Kind to its API resource and kind.
func resource(k Kind) (resource, kind string) {
	if k == ConfigMaps {
		return "configmaps", "ConfigMap"
	}
	return "endpoints", "Endpoints"
}

// metaOnly decodes the metadata of any object.
type metaOnly struct {
	APIVersion string            `json:"apiVersion,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

// raw returns a request's body, or its error decoded from the API
// server's Status (Raw alone does not decode it).
func raw(res rest.Result) ([]byte, error) {
	b, err := res.Raw()
	if err != nil {
		if serr := res.Error(); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	return b, nil
}

// remember decodes an answer's metadata and keeps the object.
func (r *restObjects) remember(kind Kind, b []byte, err error) (*metav1.ObjectMeta, error) {
	if err != nil {
		return nil, err
	}
	var o metaOnly
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("unable to decode the object's metadata: %w", err)
	}
	r.mu.Lock()
	r.last[key(kind, o.Metadata.Namespace, o.Metadata.Name)] = b
	r.mu.Unlock()
	return &o.Metadata, nil
}

func key(kind Kind, namespace, name string) string {
	return string(kind) + "/" + namespace + "/" + name
}

func (r *restObjects) Get(ctx context.Context, kind Kind, namespace, name string) (*metav1.ObjectMeta, error) {
	res, _ := resource(kind)
	b, err := raw(r.c.Get().Namespace(namespace).Resource(res).Name(name).Do(ctx))
	return r.remember(kind, b, err)
}

func (r *restObjects) Create(ctx context.Context, kind Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error) {
	res, k := resource(kind)
	body, err := json.Marshal(metaOnly{APIVersion: "v1", Kind: k, Metadata: *meta})
	if err != nil {
		return nil, err
	}
	b, err := raw(r.c.Post().Namespace(meta.Namespace).Resource(res).
		SetHeader("Content-Type", "application/json").Body(body).Do(ctx))
	return r.remember(kind, b, err)
}

func (r *restObjects) SetAnnotation(ctx context.Context, kind Kind, meta *metav1.ObjectMeta, k, value string) (*metav1.ObjectMeta, error) {
	res, _ := resource(kind)
	r.mu.Lock()
	last := r.last[key(kind, meta.Namespace, meta.Name)]
	r.mu.Unlock()
	var obj map[string]any
	if err := json.Unmarshal(last, &obj); err != nil || resourceVersion(obj) != meta.ResourceVersion {
		// Not the version we know: read it; the update below still
		// carries meta's resourceVersion, so a newer object conflicts.
		b, err := raw(r.c.Get().Namespace(meta.Namespace).Resource(res).Name(meta.Name).Do(ctx))
		if err != nil {
			return nil, err
		}
		obj = nil
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("unable to decode the object: %w", err)
		}
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		md["annotations"] = ann
	}
	ann[k] = value
	// An update that carries metadata.resourceVersion is applied only to
	// that version of the object: the API server answers 409 otherwise.
	md["resourceVersion"] = meta.ResourceVersion
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	b, err := raw(r.c.Put().Namespace(meta.Namespace).Resource(res).Name(meta.Name).
		SetHeader("Content-Type", "application/json").Body(body).Do(ctx))
	return r.remember(kind, b, err)
}

func resourceVersion(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	rv, _ := md["resourceVersion"].(string)
	return rv
}
