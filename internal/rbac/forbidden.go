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
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Forbidden describes a 403 Forbidden answer from the API server. Fields the
// error does not reveal stay empty; Group is "" both for the core group and
// when unknown. Verb is empty when the 403 did not come from authorization
// (for example an admission plugin or a terminating namespace), in which
// case no Role can fix it and Message says why.
type Forbidden struct {
	Verb      string
	Group     string
	Resource  string // with "/subresource" when the request was for one
	Namespace string // empty for cluster-scoped requests
	Name      string
	User      string
	// Message is the API server's message, verbatim.
	Message string
}

// quoted matches one Go-quoted string as written by the API server's %q.
const quoted = `"((?:[^"\\]|\\.)*)"`

// forbiddenResourceRE matches the authorizer's message for resource
// requests (k8s.io/apiserver endpoints/handlers/responsewriters).
var forbiddenResourceRE = regexp.MustCompile(`User ` + quoted + ` cannot (\S+) resource ` + quoted +
	` in API group ` + quoted + `(?: in the namespace ` + quoted + `)?`)

// forbiddenPathRE matches the authorizer's message for non-resource URLs.
var forbiddenPathRE = regexp.MustCompile(`User ` + quoted + ` cannot (\S+) path ` + quoted)

// forbiddenNameRE matches the `<resource> "<name>" is forbidden:` prefix
// apierrors.NewForbidden writes.
var forbiddenNameRE = regexp.MustCompile(`^\S+ ` + quoted + ` is forbidden: `)

// unsanitize reverses the HTML escaping the API server applies to the
// authorizer's message.
var unsanitize = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// unquote decodes the inside of a Go-quoted string, keeping it raw if it
// is not valid.
func unquote(s string) string {
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

// ParseForbidden extracts what a 403 says. It looks through wrapped errors
// for an apierrors.APIStatus with code 403 and takes the resource, group and
// name from its details and the verb, user, resource (with subresource),
// group and namespace from its message, which the API server's authorizer
// writes as
//
//	leases.coordination.k8s.io "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ns"
//
// ok is false when err is not a 403.
func ParseForbidden(err error) (f Forbidden, ok bool) {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return Forbidden{}, false
	}
	st := status.Status()
	if st.Code != http.StatusForbidden && !(st.Code == 0 && st.Reason == "Forbidden") {
		return Forbidden{}, false
	}
	f.Message = st.Message
	if d := st.Details; d != nil {
		f.Group, f.Resource, f.Name = d.Group, d.Kind, d.Name
	}
	if m := forbiddenResourceRE.FindStringSubmatch(st.Message); m != nil {
		f.User = unsanitize.Replace(unquote(m[1]))
		f.Verb = m[2]
		f.Resource = unquote(m[3])
		f.Group = unquote(m[4])
		f.Namespace = unquote(m[5])
	} else if m := forbiddenPathRE.FindStringSubmatch(st.Message); m != nil {
		f.User = unsanitize.Replace(unquote(m[1]))
		f.Verb = m[2]
	}
	if f.Name == "" {
		if m := forbiddenNameRE.FindStringSubmatch(st.Message); m != nil {
			f.Name = unquote(m[1])
		}
	}
	return f, true
}

// Rule returns the permission the 403 denied. It is only meaningful when
// f.Verb and f.Resource are set.
func (f Forbidden) Rule() Rule {
	return Rule{Group: f.Group, Resource: f.Resource, Verb: f.Verb, Name: f.Name}
}

// Subject returns the identity that was denied, the zero Subject when the
// 403 did not name it (see WhoAmI).
func (f Forbidden) Subject() Subject {
	return SubjectFromUsername(f.User)
}
