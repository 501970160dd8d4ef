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
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elector-dev/elector/internal/rbac"
)

// startupTimeout bounds each request made before campaigning (identity and
// permission checks), so that an unreachable API server is reported
// quickly instead of retried forever.
const startupTimeout = 5 * time.Second

// clients reach the API server: see api.go.
type clients struct {
	*api
	host     string
	username string // from the credentials; names the caller when SelfSubjectReview is unavailable
}

// inClusterConfig loads the mounted ServiceAccount's credentials; tests
// replace it.
var inClusterConfig = rest.InClusterConfig

// restConfig finds credentials in controller-runtime's order (kubectl's,
// with in-cluster credentials before the default file): --kubeconfig,
// else the files of $KUBECONFIG, else in-cluster, else ~/.kube/config.
// $KUBECONFIG wins over in-cluster credentials so that a Pod (or a
// developer's shell inside one) can point elector at another cluster the
// way it points kubectl there.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); err != nil {
			return nil, configf("--kubeconfig=%s: %v", kubeconfig, pathErr(err))
		}
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, configf("--kubeconfig=%s: %s", kubeconfig, oneLine(err))
		}
		return rc, nil
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		rc, err := loadKubeconfig()
		switch {
		case clientcmd.IsEmptyConfig(err):
			return nil, configf("$KUBECONFIG=%s: no kubeconfig there (missing or empty files); fix the path, or unset KUBECONFIG to use in-cluster credentials", env)
		case err != nil:
			return nil, configf("unable to load kubeconfig from $KUBECONFIG=%s: %s", env, oneLine(err))
		}
		return rc, nil
	}
	rc, err := inClusterConfig()
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, &usageError{code: ExitUnreachable, msg: fmt.Sprintf("unable to load in-cluster credentials: %s; mount a ServiceAccount token (automountServiceAccountToken) or pass --kubeconfig", oneLine(err))}
	}
	rc, err = loadKubeconfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, &usageError{code: ExitUnreachable, msg: "no credentials: not running in a Pod and no kubeconfig found; pass --kubeconfig=PATH or set $KUBECONFIG"}
	case err != nil:
		return nil, configf("unable to load kubeconfig from ~/.kube/config: %s", oneLine(err))
	}
	return rc, nil
}

// loadKubeconfig loads the files of $KUBECONFIG, or ~/.kube/config when
// it is unset, as kubectl does.
func loadKubeconfig() (*rest.Config, error) {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
}

// kubeconfigNamespace returns the namespace of the current context of
// the kubeconfig that credentials come from outside a cluster: path when
// given, else the files of $KUBECONFIG, else ~/.kube/config; "" when
// there is none or it names no namespace. A kubeconfig that does not load
// is reported by restConfig, not here.
func kubeconfigNamespace(path string) string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := rules.Load()
	if err != nil || cfg == nil {
		return ""
	}
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok && ctx != nil {
		return ctx.Namespace
	}
	return ""
}

// newClients builds the API clients, each with a client-side rate limit
// of qps requests per second and burst at once (--kube-api-qps,
// --kube-api-burst; client-go's defaults would apply otherwise). API
// server warnings go to log.
func newClients(rc *rest.Config, qps float32, burst int, log *slog.Logger) (*clients, error) {
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = qps, burst
	rc.RateLimiter = nil // one limiter per client, built from QPS and Burst
	rc.UserAgent = "elector/" + version()
	rc.WarningHandler = slogWarnings{log: log, seen: &sync.Map{}}
	a, err := newAPI(rc)
	if err != nil {
		return nil, configf("unable to configure the API client: %s", oneLine(err))
	}
	return &clients{api: a, host: rc.Host, username: usernameFromConfig(rc)}, nil
}

// whoAmI checks that the API server is reachable and accepts the
// credentials, and names the caller for permission messages. It uses a
// SelfSubjectReview; when the server does not offer it (or denies it), the
// caller is taken from the ServiceAccount token, else unknown.
func whoAmI(ctx context.Context, c *clients) (rbac.Subject, error) {
	rctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	user, err := rbac.WhoAmI(rctx, c.api)
	if err == nil {
		return rbac.SubjectFromUsername(user), nil
	}
	var status apierrors.APIStatus
	switch {
	case ctx.Err() != nil:
		return rbac.Subject{}, ctx.Err()
	case apierrors.IsUnauthorized(err):
		return rbac.Subject{}, &rejectedError{&usageError{code: ExitUnreachable, msg: fmt.Sprintf(
			"the API server at %s rejected the credentials (401 Unauthorized); check --kubeconfig or the mounted ServiceAccount token", c.host)}}
	case errors.As(err, &status):
		// Reachable; only the review is unavailable.
		return rbac.SubjectFromUsername(c.username), nil
	default:
		return rbac.Subject{}, unreachable(c.host, err)
	}
}

// unreachableError is a request that got no answer: the sidecar waits
// for the API server. It exits with its code only where waiting is not
// an option.
type unreachableError struct{ *usageError }

func (e *unreachableError) Unwrap() error { return e.usageError }

// rejectedError is a 401: the credentials were rejected. Re-checked for
// the start-up window (a starting API server may not know the token's
// issuer yet), then final.
type rejectedError struct{ *usageError }

func (e *rejectedError) Unwrap() error { return e.usageError }

// unreachable is the one line for a request that got no answer.
func unreachable(host string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v", startupTimeout)
	}
	return &unreachableError{&usageError{code: ExitUnreachable, msg: fmt.Sprintf(
		"unable to reach the API server at %s: %s; check the address and the network (--kubeconfig, or KUBERNETES_SERVICE_HOST in a Pod)", host, oneLine(err))}}
}

// usernameFromConfig guesses the user name from the credentials, without
// asking the API server: the subject of a JWT bearer token (ServiceAccount
// tokens), else the common name of a client certificate.
func usernameFromConfig(rc *rest.Config) string {
	token := rc.BearerToken
	if token == "" && rc.BearerTokenFile != "" {
		if b, err := os.ReadFile(rc.BearerTokenFile); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if u := usernameFromToken(token); u != "" {
		return u
	}
	certPEM := rc.CertData
	if len(certPEM) == 0 && rc.CertFile != "" {
		certPEM, _ = os.ReadFile(rc.CertFile)
	}
	if block, _ := pem.Decode(certPEM); block != nil {
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			return cert.Subject.CommonName
		}
	}
	return ""
}

// usernameFromToken reads the subject of a JWT bearer token, such as a
// ServiceAccount token's "system:serviceaccount:NS:NAME", without
// verifying it: the result only names the caller in messages.
func usernameFromToken(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// slogWarnings logs API server warnings (deprecations and the like),
// each text once: the same request repeated every few seconds (the old
// Endpoints lock in migration mode: "v1 Endpoints is deprecated") must not
// fill the log.
type slogWarnings struct {
	log  *slog.Logger
	seen *sync.Map
}

func (w slogWarnings) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	if _, dup := w.seen.LoadOrStore(text, struct{}{}); !dup {
		w.log.Warn("API server warning", "text", text)
	}
}

var _ rest.WarningHandler = slogWarnings{}

func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneLine keeps error messages to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
