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

// Package harness runs elector candidates under injected faults against a
// real control plane: library candidates (goroutines with their own clock
// and fault proxy) and sidecar replicas (cmd/elector processes in exec
// mode running an actor child). It generates seeded fault schedules, runs
// them, and checks the record with package history.
//
// It is shared by the short chaos tests (package chaos) and the long run
// (cmd/chaos).
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/chaos/history"
	"github.com/elector-dev/elector/test/controlplane"
)

// Timing of the library candidates: short, and within client-go's rule
// (lease > renew > 1.2 × retry), like test/election.
type Timing struct {
	Lease, Renew, Retry time.Duration
}

// DefaultTiming is a 3s lease: the library's documented clock-rate bound
// is then (3−2)/(3+2) = 0.2.
var DefaultTiming = Timing{Lease: 3 * time.Second, Renew: 2 * time.Second, Retry: 500 * time.Millisecond}

// SidecarTTL is the --ttl of sidecar replicas: lease 3s, renew deadline
// 1.8s, retry 0.3s, heartbeat 75ms (cmd/elector/config.go derives them).
const SidecarTTL = 3 * time.Second

// Sidecar timings derived from SidecarTTL as cmd/elector does.
const (
	SidecarRenew  = SidecarTTL * 3 / 5
	SidecarMargin = SidecarTTL - SidecarRenew // the documented margin, 2ttl/5
)

// Env is one election: a namespace, a Lease name, a ServiceAccount with
// exactly the documented Lease permissions, and a record.
type Env struct {
	CP     *controlplane.ControlPlane
	NS     string
	Lease  string
	SA     *rest.Config
	Admin  kubernetes.Interface
	Dir    string // files of this election: record, lock, logs
	Rec    *history.Recorder
	Record string // path of the record file
	Lock   string // path of the file acting actors flock
	Log    io.Writer
}

var envCounter atomic.Int64

// NewEnv creates a fresh namespace (prefix-N) with a ServiceAccount bound
// to the Lease Role, and a record in dir. Close the Env when done.
func NewEnv(ctx context.Context, cp *controlplane.ControlPlane, dir, prefix string, log io.Writer) (*Env, error) {
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return nil, err
	}
	e := &Env{
		CP: cp, NS: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid()%10000, envCounter.Add(1)), Lease: "lock",
		Admin: admin, Dir: dir, Log: log,
		Record: filepath.Join(dir, "record"), Lock: filepath.Join(dir, "lock"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.NS}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("unable to create namespace: %w", err)
	}
	if e.SA, err = cp.ServiceAccountConfig(ctx, e.NS, "candidate"); err != nil {
		return nil, err
	}
	if err := e.grant(ctx, rbac.Role(e.NS, "elector", rbac.LeaseRules(e.Lease))); err != nil {
		return nil, err
	}
	if e.Rec, err = history.Create(e.Record); err != nil {
		return nil, err
	}
	return e, nil
}

// Close closes the record.
func (e *Env) Close() error { return e.Rec.Close() }

func (e *Env) grant(ctx context.Context, roleYAML string) error {
	var role rbacv1.Role
	if err := yaml.Unmarshal([]byte(roleYAML), &role); err != nil {
		return fmt.Errorf("unable to parse the Role: %w", err)
	}
	role.Namespace = e.NS
	if _, err := e.Admin.RbacV1().Roles(e.NS).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "candidate", Namespace: e.NS}},
	}
	_, err := e.Admin.RbacV1().RoleBindings(e.NS).Create(ctx, rb, metav1.CreateOptions{})
	return err
}

// revoke deletes the candidates' RoleBinding, so that the API server
// denies all their requests, and returns how to create it again.
func (e *Env) revoke(ctx context.Context) (func() error, error) {
	rbs := e.Admin.RbacV1().RoleBindings(e.NS)
	rb, err := rbs.Get(ctx, "elector", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("unable to read the RoleBinding: %w", err)
	}
	if err := rbs.Delete(ctx, rb.Name, metav1.DeleteOptions{}); err != nil {
		return nil, fmt.Errorf("unable to delete the RoleBinding: %w", err)
	}
	e.Logf("RoleBinding %s deleted", rb.Name)
	return func() error {
		rb.ResourceVersion, rb.UID = "", ""
		_, err := rbs.Create(context.WithoutCancel(ctx), rb, metav1.CreateOptions{})
		e.Logf("RoleBinding %s created again", rb.Name)
		return err
	}, nil
}

// Logf writes one line to the Env's log.
func (e *Env) Logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
	}
}

// via returns a copy of the ServiceAccount config that connects through a
// proxy at addr. TLS passes through the proxy; the serving certificate is
// for 127.0.0.1, which the proxy's address shares.
func (e *Env) via(addr string) *rest.Config {
	c := rest.CopyConfig(e.SA)
	c.Host = "https://" + addr
	return c
}

// apiAddr is host:port of the API server.
func (e *Env) apiAddr() string {
	u := e.CP.URL()
	return u[len("https://"):]
}
