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
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	// The OIDC auth provider of kubeconfigs (the azure and gcp entries
	// only say to use their exec plugins, which client-go runs without an
	// import). It adds no module and about 1 MB, so kubeconfigs that work
	// with kubectl work here.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/elector-dev/elector/internal/rbac"
)

// fieldManager names the plugin's writes in managedFields.
const fieldManager = "kubectl-elector"

// kube holds the typed clients of the API groups the plugin uses (only
// these are compiled in), sharing one connection pool.
type kube struct {
	host         string
	coordination coordinationv1client.CoordinationV1Interface
	core         corev1client.CoreV1Interface
	authz        authorizationv1client.AuthorizationV1Interface
	authn        authenticationv1client.AuthenticationV1Interface
	date         *serverDate
}

// client returns the clients, built on first use.
func (a *app) client() (*kube, error) {
	if a.kube != nil {
		return a.kube, nil
	}
	if err := a.haveCredentials(); err != nil {
		return nil, err
	}
	rc, err := a.flags.ToRESTConfig()
	if err != nil {
		return nil, configErr(err)
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "kubectl-elector/" + currentVersion().Version
	date := &serverDate{}
	rc.Wrap(date.wrap)
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, configErr(err)
	}
	k := &kube{host: rc.Host, date: date}
	var errs [4]error
	k.coordination, errs[0] = coordinationv1client.NewForConfigAndClient(rc, hc)
	k.core, errs[1] = corev1client.NewForConfigAndClient(rc, hc)
	k.authz, errs[2] = authorizationv1client.NewForConfigAndClient(rc, hc)
	k.authn, errs[3] = authenticationv1client.NewForConfigAndClient(rc, hc)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, configErr(err)
	}
	a.kube = k
	return k, nil
}

// serviceAccountTokenFile is where a Pod's ServiceAccount token is
// mounted: with $KUBERNETES_SERVICE_HOST and _PORT, client-go's sign
// that it runs in a cluster (rest.InClusterConfig). A variable for tests.
var serviceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// haveCredentials refuses, with exit 3 and what was looked for, when there
// is nothing to connect with: no --kubeconfig, no file of $KUBECONFIG, no
// ~/.kube/config, no --server, and not in a Pod. client-go would then try
// http://localhost:8080, which is never what the user meant.
//
// The order is kubectl's (k8s.io/cli-runtime, clientcmd's deferred
// loading): --kubeconfig, else the files of $KUBECONFIG, else
// ~/.kube/config; the in-cluster ServiceAccount only when these hold no
// configuration at all.
func (a *app) haveCredentials() error {
	if f := a.flags.KubeConfig; f != nil && *f != "" {
		return nil // clientcmd reports a missing or bad file itself
	}
	if s := a.flags.APIServer; s != nil && *s != "" {
		return nil // --server (with --token, say), as kubectl allows
	}
	raw, err := a.flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return configErr(err)
	}
	if !clientcmdapi.IsConfigEmpty(&raw) || inCluster() {
		return nil
	}
	env := "$KUBECONFIG is unset"
	if v := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); v != "" {
		env = fmt.Sprintf("$KUBECONFIG=%s names no kubeconfig file", v)
	}
	return fail(ExitConfig, "no kubeconfig found: --kubeconfig is not given, %s, %s does not exist, and this is not a Pod with a ServiceAccount token; pass --kubeconfig=PATH or set $KUBECONFIG",
		env, clientcmd.RecommendedHomeFile)
}

// inCluster is client-go's test for running in a Pod.
func inCluster() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "" {
		return false
	}
	_, err := os.Stat(serviceAccountTokenFile)
	return err == nil
}

func configErr(err error) error {
	if clientcmd.IsEmptyConfig(err) {
		return fail(ExitConfig, "no kubeconfig found: pass --kubeconfig=PATH or set $KUBECONFIG")
	}
	return fail(ExitConfig, "unable to load the kubeconfig: %s; check --kubeconfig, --context and $KUBECONFIG", oneLine(err))
}

// serverDate remembers the Date header of the API server's last answer:
// the API server's clock, against which the plugin judges how long ago a
// Lease was written (see judge).
type serverDate struct {
	mu   sync.Mutex
	last time.Time
}

func (d *serverDate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			if t, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
				d.mu.Lock()
				d.last = t
				d.mu.Unlock()
			}
		}
		return resp, err
	})
}

// now is the API server's time of its last answer; zero if none had a
// Date header.
func (d *serverDate) now() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// accessReviewer answers rbac.Check with SelfSubjectAccessReviews.
type accessReviewer struct {
	c authorizationv1client.SelfSubjectAccessReviewsGetter
}

func (r accessReviewer) ReviewAccess(ctx context.Context, a rbac.Attributes) (bool, error) {
	res, err := r.c.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
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

// selfReviewer answers rbac.WhoAmI with a SelfSubjectReview.
type selfReviewer struct {
	c authenticationv1client.SelfSubjectReviewsGetter
}

func (r selfReviewer) ReviewSelf(ctx context.Context) (string, error) {
	res, err := r.c.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return res.Status.UserInfo.Username, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// need is what a command asks of the API server, for the message when
// it is denied: the rules it needs in namespace, and the name of the Role
// that grants them.
type need struct {
	namespace string
	rules     []rbac.Rule
	role      string
	// what the command was doing, for messages: "list Leases".
	what string
}

// apiErr turns an API error into the exit error: a 403 with the Role
// that fixes it (the rules of n that a SelfSubjectAccessReview denies),
// 401 and no answer as unreachable, 404 as not found.
func (a *app) apiErr(ctx context.Context, err error, n need) error {
	k := a.kube
	var status apierrors.APIStatus
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return fail(ExitFailure, "interrupted")
	case apierrors.IsForbidden(err):
		return a.forbidden(ctx, err, n)
	case apierrors.IsUnauthorized(err):
		return fail(ExitUnreachable, "the API server at %s rejected the credentials (401 Unauthorized); check --kubeconfig, --context, --user or --token", k.host)
	case apierrors.IsNotFound(err):
		return fail(ExitNotFound, "unable to %s: %s", n.what, oneLine(err))
	case errors.As(err, &status):
		return fail(ExitFailure, "unable to %s: %s", n.what, oneLine(err))
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(ExitUnreachable, "unable to reach the API server at %s: %s; check --kubeconfig, --context and --server", k.host, oneLine(err))
	}
}

// forbidden is the 403 message: who lacks what, and the Role and
// RoleBinding that grant it, as the sidecar prints them.
func (a *app) forbidden(ctx context.Context, err error, n need) error {
	k := a.kube
	f, _ := rbac.ParseForbidden(err)
	subject := f.Subject()
	if subject.Name == "" {
		if user, werr := rbac.WhoAmI(ctx, selfReviewer{k.authn}); werr == nil {
			subject = rbac.SubjectFromUsername(user)
		}
	}
	ns := n.namespace
	if ns == "" && f.Namespace == "" && f.Verb != "" {
		return fail(ExitForbidden, "unable to %s in all namespaces: %s lacks %s cluster-wide, which only a ClusterRole grants; name a namespace with -n instead",
			n.what, describeSubject(subject), f.Rule())
	}
	if ns == "" {
		ns = f.Namespace
	}
	missing := []rbac.Rule(nil)
	if ns != "" && len(n.rules) > 0 {
		if m, cerr := rbac.Check(ctx, accessReviewer{k.authz}, ns, n.rules); cerr == nil {
			missing = m
		}
	}
	if len(missing) == 0 && f.Verb != "" && f.Resource != "" {
		missing = []rbac.Rule{f.Rule()}
	}
	if ns == "" || len(missing) == 0 {
		return fail(ExitForbidden, "unable to %s: %s", n.what, oneLine(err))
	}
	names := make([]string, len(missing))
	for i, r := range missing {
		names[i] = r.String()
	}
	noun := "permissions"
	if len(missing) == 1 {
		noun = "permission"
	}
	return fail(ExitForbidden, "%s: unable to %s: %s lacks %d %s in namespace %s: %s\n\n%s",
		displayName, n.what, describeSubject(subject), len(missing), noun, ns, joinComma(names),
		rbac.Explain(ns, subject, missing, n.role))
}

// describeSubject names the caller for the summary line, as the sidecar
// does.
func describeSubject(s rbac.Subject) string {
	switch {
	case s.Name == "":
		return "this client"
	case s.Kind == rbac.KindServiceAccount:
		return fmt.Sprintf("ServiceAccount %s/%s", s.Namespace, s.Name)
	default:
		return fmt.Sprintf("User %s", s.Name)
	}
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
