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

// Package countproxy is a TLS reverse proxy in front of kube-apiserver that
// counts the requests passing through it, by caller, namespace, resource
// and verb, and the watches held open. It is how the benchmark measures API
// load at the server side, the same way for every client.
package countproxy

import (
	"net/http"
	"net/url"
	"strings"
)

// Verbs as the benchmark reports them: HTTP methods, with GET split into
// GET (one object), LIST (a collection) and WATCH (?watch=true or 1).
const (
	VerbGet              = "GET"
	VerbList             = "LIST"
	VerbWatch            = "WATCH"
	VerbCreate           = "POST"
	VerbUpdate           = "PUT"
	VerbPatch            = "PATCH"
	VerbDelete           = "DELETE"
	VerbDeleteCollection = "DELETECOLLECTION"
	VerbOther            = "OTHER"
)

// Verbs lists the verbs in report order.
var Verbs = []string{VerbGet, VerbList, VerbWatch, VerbUpdate, VerbCreate, VerbPatch, VerbDelete, VerbDeleteCollection, VerbOther}

// ResourceLeases is the resource of coordination.k8s.io/v1 Lease requests;
// every other request is counted under ResourceOther.
const (
	ResourceLeases = "leases"
	ResourceOther  = "other"
)

// tagPrefix starts the path prefix that names the caller: a client whose
// server URL is https://proxy/c/<tag> sends /c/<tag>/apis/...; the proxy
// strips the prefix and counts the request under <tag>. client-go keeps a
// server URL's path in front of every request, so any client (library,
// sidecar binary) can be told apart without changing it.
const tagPrefix = "/c/"

// Key identifies one counter.
type Key struct {
	Tag       string // caller, from the /c/<tag> path prefix; "" without one
	Namespace string // namespace of a namespaced request; "" otherwise
	Resource  string // ResourceLeases or ResourceOther
	Verb      string
}

// splitTag removes a /c/<tag> prefix from path and returns the tag and the
// path the API server should see.
func splitTag(path string) (tag, rest string) {
	s, ok := strings.CutPrefix(path, tagPrefix)
	if !ok {
		return "", path
	}
	tag, rest, _ = strings.Cut(s, "/")
	return tag, "/" + rest
}

// Classify names the caller tag, namespace, resource and verb of a request
// as the client sent it (with the /c/<tag> prefix, if any). Lease requests
// are those under /apis/coordination.k8s.io/v1/namespaces/<ns>/leases.
func Classify(method string, u *url.URL) Key {
	tag, path := splitTag(u.Path)
	k := Key{Tag: tag, Resource: ResourceOther}

	// /apis/<group>/<version>/namespaces/<ns>/<resource>[/<name>[/<sub>]]
	// /api/<version>/namespaces/<ns>/<resource>[/<name>[/<sub>]]
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "apis":
		if parts[1] == "coordination.k8s.io" && parts[2] == "v1" {
			k.Resource = ResourceLeases
		}
		rest = parts[3:]
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		k.Namespace = rest[1]
		rest = rest[2:]
	} else if len(rest) >= 1 && rest[0] == "namespaces" {
		// Cluster-scoped, or a list of Leases across all namespaces.
		rest = rest[1:]
	}
	if k.Resource == ResourceLeases && (len(rest) == 0 || rest[0] != "leases") {
		k.Resource = ResourceOther
	}
	collection := len(rest) <= 1 // .../leases, not .../leases/<name>
	q := u.Query()
	watch := q.Get("watch") == "true" || q.Get("watch") == "1"

	switch method {
	case http.MethodGet:
		switch {
		case watch:
			k.Verb = VerbWatch
		case collection:
			k.Verb = VerbList
		default:
			k.Verb = VerbGet
		}
	case http.MethodPut:
		k.Verb = VerbUpdate
	case http.MethodPost:
		k.Verb = VerbCreate
	case http.MethodPatch:
		k.Verb = VerbPatch
	case http.MethodDelete:
		if collection {
			k.Verb = VerbDeleteCollection
		} else {
			k.Verb = VerbDelete
		}
	default:
		k.Verb = VerbOther
	}
	return k
}
