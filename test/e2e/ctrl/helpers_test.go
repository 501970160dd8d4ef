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

package ctrl

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/proc"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

const (
	// guard is a failure deadline for waits, not a timing assertion: the
	// machine may be slow and shared.
	guard = 90 * time.Second
	// pollEvery paces the waits and the probe calls.
	pollEvery = 20 * time.Millisecond
	// lease is the Lease's name (LeaderElectionID).
	lease = "example-operator"
	// exitLost is the example's exit code when it lost the Lease.
	exitLost = 3
)

// timings are the replicas' LeaseDuration, RenewDeadline and RetryPeriod:
// shorter than the defaults (15s/10s/2s) so that the partition test waits
// less, with RenewDeadline well above a renewal's worst latency on a busy
// machine with -race binaries.
var timings = []string{"--lease-duration=8s", "--renew-deadline=5s", "--retry-period=1s"}

var nsCounter atomic.Int32

// env is one test's namespace: RBAC for the operator's ServiceAccount, the
// ConfigMap it reconciles, the shared lock and record files, and the
// webhook certificate.
type env struct {
	ns         *sidecar.Namespace
	admin      kubernetes.Interface
	dir        string
	lock       string
	record     string
	certDir    string
	caPool     *x509.CertPool
	kubeconfig string
}

func setup(t *testing.T) *env {
	t.Helper()
	ns := fmt.Sprintf("ctrl-%d-%s", nsCounter.Add(1), strings.ToLower(t.Name()))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	dir := t.TempDir()
	m := &sidecar.Manifests{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "operator"}},
		Role: &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "operator"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			},
		},
		RoleBinding: &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "operator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "operator"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "operator", Namespace: ns}},
		},
	}
	c := ctx(t)
	n, err := sidecar.Apply(c, cp, ns, m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Admin.CoreV1().ConfigMaps(ns).Create(c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "work"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e := &env{
		ns: n, admin: n.Admin, dir: dir, lock: filepath.Join(dir, "lock"), record: filepath.Join(dir, "record"),
		certDir: filepath.Join(dir, "certs"), kubeconfig: n.Kubeconfig,
	}
	e.caPool = writeCert(t, e.certDir)
	return e
}

// ctx is the test's context with the failure deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

// viaProxy writes a kubeconfig of the ServiceAccount that reaches the API
// server through addr (a fault proxy).
func (e *env) viaProxy(t *testing.T, addr string) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + addr
	path := filepath.Join(e.dir, "via-proxy.kubeconfig")
	if err := controlplane.WriteKubeconfig(cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// replica is one process of the example operator.
type replica struct {
	name    string
	p       *proc.Process
	probe   string // host:port of /healthz and /readyz
	webhook string // host:port of the webhook server
	client  *http.Client
}

// start starts a replica; kubeconfig "" means the ServiceAccount's own.
func (e *env) start(t *testing.T, name, kubeconfig string, extra ...string) *replica {
	t.Helper()
	if kubeconfig == "" {
		kubeconfig = e.kubeconfig
	}
	ports := freePorts(t, 2)
	r := &replica{
		name: name, probe: fmt.Sprintf("127.0.0.1:%d", ports[0]), webhook: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.caPool}}},
	}
	args := append([]string{
		"--id=" + name, "--namespace=" + e.ns.Name, "--lease=" + lease,
		"--lock=" + e.lock, "--record=" + e.record,
		"--probe-addr=" + r.probe, "--webhook-port=" + strconv.Itoa(ports[1]), "--cert-dir=" + e.certDir,
	}, timings...)
	p, err := proc.Start(proc.Options{
		Name: name, Path: exampleBin, Args: append(args, extra...),
		Env: append(os.Environ(), "KUBECONFIG="+kubeconfig, "GORACE=atexit_sleep_ms=0"),
		Log: t.Output(), WaitDelay: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	t.Cleanup(func() {
		r.p.Kill()
		if strings.Contains(r.p.Output(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race; see its output above", name)
		}
	})
	return r
}

// get calls path on the replica: "/healthz" and "/readyz" on the probe
// server, "/ping" on the webhook server (HTTPS).
func (r *replica) get(ctx context.Context, path string) error {
	_, err := r.body(ctx, path)
	return err
}

// body is get that returns the answer.
func (r *replica) body(ctx context.Context, path string) (string, error) {
	url := "http://" + r.probe + path
	if path == "/ping" {
		url = "https://" + r.webhook + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s %s: status %d: %s", r.name, path, resp.StatusCode, b)
	}
	return string(b), nil
}

// waitReady waits until the replica answers every probe and the webhook.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	c := ctx(t)
	for {
		err := r.get(c, "/healthz")
		if err == nil {
			err = r.get(c, "/readyz")
		}
		if err == nil {
			err = r.get(c, "/ping")
		}
		if err == nil {
			return
		}
		if c.Err() != nil {
			t.Fatalf("%s is not ready: %v\n%s", r.name, err, r.p.Output())
		}
		time.Sleep(pollEvery)
	}
}

func (r *replica) exitCode(t *testing.T) int {
	t.Helper()
	code, err := r.p.Wait(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.p.Output())
	}
	return code
}

// prober calls /healthz, /readyz and the webhook of a replica every
// pollEvery until stopped, and keeps the failures.
type prober struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	rounds int
	fails  []string
}

func probe(r *replica) *prober {
	c, cancel := context.WithCancel(context.Background())
	p := &prober{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for c.Err() == nil {
			for _, path := range []string{"/healthz", "/readyz", "/ping"} {
				if err := r.get(c, path); err != nil && c.Err() == nil {
					p.mu.Lock()
					p.fails = append(p.fails, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), r.name, err))
					p.mu.Unlock()
				}
			}
			p.mu.Lock()
			p.rounds++
			p.mu.Unlock()
			select {
			case <-c.Done():
			case <-time.After(pollEvery):
			}
		}
	}()
	return p
}

func (p *prober) roundsDone() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rounds
}

// stop ends the probing and fails the test on any failed call.
func (p *prober) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	testwait.Recv(t, p.done, "the prober to stop")
	if len(p.fails) > 0 {
		t.Errorf("%d failed probe or webhook calls, e.g. %s", len(p.fails), p.fails[0])
	}
	return p.rounds
}

// rec is one reconcile from the shared record.
type rec struct {
	id         string
	token      int64
	start, end time.Time
}

// records reads the shared record; it fails the test if two replicas
// ever held the lock at once.
func (e *env) records(t *testing.T) []rec {
	t.Helper()
	f, err := os.Open(e.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rs []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[1] == "CONTENDED" {
			t.Fatalf("the lock was contended: two replicas reconciled at once: %q", sc.Text())
		}
		if len(fs) != 4 {
			continue // a line being written
		}
		tok, err1 := strconv.ParseInt(fs[1], 10, 64)
		s, err2 := strconv.ParseInt(fs[2], 10, 64)
		en, err3 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rs = append(rs, rec{fs[0], tok, time.Unix(0, s), time.Unix(0, en)})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
	return rs
}

// waitRecords waits until replica id has recorded n reconciles.
func (e *env) waitRecords(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		if len(of(e.records(t), id)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has not reconciled %d times in %v", id, n, guard)
		}
		time.Sleep(pollEvery)
	}
}

func of(rs []rec, id string) []rec {
	var out []rec
	for _, r := range rs {
		if r.id == id {
			out = append(out, r)
		}
	}
	return out
}

// checkSequence checks that the record is the replicas' terms in order,
// never interleaved or overlapping, and returns the gaps between
// consecutive terms (the handoffs).
func checkSequence(t *testing.T, rs []rec, ids ...string) []time.Duration {
	t.Helper()
	var seen []string
	for i, r := range rs {
		if i > 0 && r.start.Before(rs[i-1].end) {
			t.Errorf("reconciles overlap: %s %v–%v and %s %v–%v", rs[i-1].id, rs[i-1].start, rs[i-1].end, r.id, r.start, r.end)
		}
		if len(seen) == 0 || seen[len(seen)-1] != r.id {
			seen = append(seen, r.id)
		}
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("reconciling replicas in order = %v, want %v", seen, ids)
	}
	var gaps []time.Duration
	for i := 1; i < len(rs); i++ {
		if rs[i].id != rs[i-1].id {
			gaps = append(gaps, rs[i].start.Sub(rs[i-1].end))
		}
	}
	return gaps
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// writeCert writes a self-signed serving certificate for 127.0.0.1 into
// dir as tls.crt and tls.key, the files controller-runtime's webhook
// server reads, and returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example-operator-webhook"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
