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

package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Users known to the control plane's token authenticator. Every user is also
// in the group system:authenticated.
const (
	// AdminUser is in the group system:masters and may do anything.
	AdminUser = "admin"
	// UnprivilegedUser has no permissions beyond those RBAC grants to every
	// authenticated user.
	UnprivilegedUser = "alice"
)

// ServiceAccountIssuer is the issuer, and the audience, of ServiceAccount
// tokens minted by the control plane.
const ServiceAccountIssuer = "https://elector.test"

// EnvVerbose names the environment variable that, set to 1, copies the
// output of etcd and kube-apiserver to Options.Out as if Options.Verbose
// were set.
const EnvVerbose = "ELECTOR_CONTROLPLANE_VERBOSE"

const (
	defaultStartTimeout = 60 * time.Second
	readyPollInterval   = 100 * time.Millisecond
	logTailLines        = 30
	tempDirPrefix       = "elector-controlplane-"
	ownerFile           = "owner.pid"
	serviceAccountTTL   = time.Hour
)

// Options configure [Start].
type Options struct {
	// Out receives the progress of a first-run build of the binaries and,
	// with Verbose, the output of etcd and kube-apiserver. Nil discards the
	// progress; verbose output then goes to os.Stderr.
	Out io.Writer
	// Verbose copies the output of etcd and kube-apiserver to Out. Their
	// output is always written to log files in the control plane's temporary
	// directory and included in startup errors.
	Verbose bool
	// StartTimeout bounds the time etcd, then kube-apiserver, may take to
	// become ready. Zero means 60 seconds.
	StartTimeout time.Duration
	// APIServerArgs are extra kube-apiserver flags, appended to the defaults.
	// With several kube-apiservers, every member gets them.
	APIServerArgs []string

	// APIServers is the number of kube-apiservers. Zero means one, or three
	// with HA. With more than one, the members share a serving certificate,
	// the static tokens and the ServiceAccount keys, and clients connect to
	// them through a load balancer (see [ControlPlane.URL]).
	APIServers int
	// EtcdMembers is the number of members of the etcd cluster. Zero means
	// one, or three with HA. Every kube-apiserver connects to all of them.
	EtcdMembers int
	// HA asks for a highly available control plane: three kube-apiservers
	// behind a load balancer, on a three-member etcd cluster. APIServers and
	// EtcdMembers, when set, override the three.
	HA bool
}

// haMembers is the number of members of each kind with Options.HA.
const haMembers = 3

// members returns the number of kube-apiservers and of etcd members.
func (o Options) members() (apiservers, etcd int) {
	apiservers, etcd = 1, 1
	if o.HA {
		apiservers, etcd = haMembers, haMembers
	}
	if o.APIServers > 0 {
		apiservers = o.APIServers
	}
	if o.EtcdMembers > 0 {
		etcd = o.EtcdMembers
	}
	return apiservers, etcd
}

// ControlPlane is a running etcd and kube-apiserver listening on loopback
// ports, with all their state in a temporary directory. Its methods are safe
// for concurrent use.
//
// An HA control plane (see [Options.HA]) runs several of each, the
// "members", numbered from 0: kube-apiservers behind an in-process load
// balancer, on an etcd cluster. Any member may be stopped and started again.
type ControlPlane struct {
	dir        string
	url        string
	caData     []byte
	tokens     map[string]string // user name to bearer token
	kubeconfig string
	timeout    time.Duration

	etcds         []*process
	etcdURLs      []string // client URL of each etcd member
	apiservers    []*process
	apiserverURLs []string // URL of each kube-apiserver

	// lb routes to the kube-apiservers when there are several; nil
	// otherwise.
	lb *loadBalancer

	// probe polls the readiness endpoints; it skips certificate verification
	// because a single kube-apiserver creates its own serving certificate.
	probe *http.Client

	mu      sync.Mutex // serializes Stop and the restart methods
	stopped bool
}

// errPortInUse marks a startup failure caused by a port taken between the
// moment it was found free and the moment a child bound it.
var errPortInUse = errors.New("port already in use")

// Start starts etcd, then kube-apiserver, and waits until the API server is
// ready. The binaries come from [Binaries], which may build them first.
//
// With Options.HA (or APIServers or EtcdMembers above one), it starts the
// etcd members together, then the kube-apiservers together, and waits until
// each is ready and the load balancer routes to every kube-apiserver.
//
// Call Stop when done; if the calling process dies first, the children are
// killed by the kernel.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if os.Getenv(EnvVerbose) == "1" {
		opts.Verbose = true
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	apiserverPath, etcdPath, err := Binaries(ctx, out)
	if err != nil {
		return nil, err
	}
	removeStaleDirs()

	// Free ports are found by binding and closing; another process may take
	// one before etcd or kube-apiserver binds it, so retry once.
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, opts, apiserverPath, etcdPath)
		if err == nil {
			return c, nil
		}
		if attempt == 2 || !errors.Is(err, errPortInUse) {
			return nil, err
		}
		fmt.Fprintf(out, "control plane: %v; retrying with other ports\n", err)
	}
}

func start(ctx context.Context, opts Options, apiserverPath, etcdPath string) (_ *ControlPlane, err error) {
	nAPIServers, nEtcd := opts.members()
	dir, err := os.MkdirTemp("", tempDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("unable to create the control plane directory: %w", err)
	}
	c := &ControlPlane{
		dir:     dir,
		timeout: opts.StartTimeout,
		probe: &http.Client{
			Timeout: 2 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				DisableKeepAlives: true,
			},
		},
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("unable to write the owner file: %w", err)
	}

	// Etcd member i listens on ports[2i] for clients and ports[2i+1] for
	// peers; kube-apiserver j on ports[2*nEtcd+j].
	ports, err := freePorts(2*nEtcd + nAPIServers)
	if err != nil {
		return nil, err
	}
	for i := range nEtcd {
		c.etcdURLs = append(c.etcdURLs, "http://127.0.0.1:"+strconv.Itoa(ports[2*i]))
	}
	for j := range nAPIServers {
		c.apiserverURLs = append(c.apiserverURLs, "https://127.0.0.1:"+strconv.Itoa(ports[2*nEtcd+j]))
	}

	tokenFile, err := c.writeTokens()
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := writeServiceAccountKeys(dir)
	if err != nil {
		return nil, err
	}
	// A single kube-apiserver writes a self-signed serving certificate in
	// its --cert-dir; several share one, signed by a CA of ours.
	var tlsArgs [][]string
	if nAPIServers == 1 {
		tlsArgs = [][]string{{"--cert-dir=" + filepath.Join(dir, "certs")}}
	} else {
		certPath, keyPath, caPEM, err := writeServingCertificate(dir)
		if err != nil {
			return nil, err
		}
		c.caData = caPEM
		for j := range nAPIServers {
			tlsArgs = append(tlsArgs, []string{
				"--tls-cert-file=" + certPath,
				"--tls-private-key-file=" + keyPath,
				// Unused with --tls-cert-file; kept apart all the same.
				"--cert-dir=" + filepath.Join(dir, memberName("certs", j, nAPIServers)),
			})
		}
	}

	var verbose io.Writer
	if opts.Verbose {
		verbose = opts.Out
		if verbose == nil {
			verbose = os.Stderr
		}
	}
	etcdName := func(i int) string { return memberName("elector", i, nEtcd) }
	peerURL := func(i int) string { return "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]) }
	var initialCluster []string
	for i := range nEtcd {
		initialCluster = append(initialCluster, etcdName(i)+"="+peerURL(i))
	}
	for i := range nEtcd {
		args := []string{
			"--name=" + etcdName(i),
			"--data-dir=" + filepath.Join(dir, memberName("etcd", i, nEtcd)),
			"--listen-client-urls=" + c.etcdURLs[i],
			"--advertise-client-urls=" + c.etcdURLs[i],
			"--listen-peer-urls=" + peerURL(i),
			"--initial-advertise-peer-urls=" + peerURL(i),
			// Ignored when a member restarts on its data directory.
			"--initial-cluster=" + strings.Join(initialCluster, ","),
			"--initial-cluster-state=new",
		}
		if nEtcd > 1 {
			args = append(args, "--initial-cluster-token="+filepath.Base(dir))
		}
		// The data is thrown away; durability is not worth the latency.
		args = append(args, "--unsafe-no-fsync")
		name := memberName("etcd", i, nEtcd)
		c.etcds = append(c.etcds, &process{
			name:    name,
			path:    etcdPath,
			args:    args,
			logPath: filepath.Join(dir, name+".log"),
			verbose: verbose,
		})
	}
	for j := range nAPIServers {
		args := []string{
			"--etcd-servers=" + strings.Join(c.etcdURLs, ","),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[2*nEtcd+j]),
		}
		args = append(args, tlsArgs[j]...)
		args = append(args,
			"--authorization-mode=Node,RBAC",
			"--token-auth-file="+tokenFile,
			"--service-account-key-file="+saPub,
			"--service-account-signing-key-file="+saKey,
			"--service-account-issuer="+ServiceAccountIssuer,
			"--api-audiences="+ServiceAccountIssuer,
			"--service-cluster-ip-range=10.0.0.0/24",
			// Without a controller manager nothing cleans up endpoints of
			// apiservers, and 127.0.0.1 is not a valid endpoint address;
			// several members would also share it.
			"--endpoint-reconciler-type=none",
		)
		args = append(args, opts.APIServerArgs...)
		name := memberName("kube-apiserver", j, nAPIServers)
		c.apiservers = append(c.apiservers, &process{
			name:    name,
			path:    apiserverPath,
			args:    args,
			logPath: filepath.Join(dir, name+".log"),
			verbose: verbose,
		})
	}

	if nAPIServers == 1 {
		c.url = c.apiserverURLs[0]
	} else {
		addrs := make([]string, nAPIServers)
		for j, u := range c.apiserverURLs {
			addrs[j] = strings.TrimPrefix(u, "https://")
		}
		c.lb, err = newLoadBalancer(addrs, func(ctx context.Context, j int) error {
			return c.checkReadyz(ctx, c.apiserverURLs[j])
		}, verbose)
		if err != nil {
			return nil, err
		}
		c.url = "https://" + c.lb.addr()
	}

	if err := c.startEtcd(ctx, allMembers(nEtcd)); err != nil {
		return nil, err
	}
	if err := c.startAPIServers(ctx, allMembers(nAPIServers)); err != nil {
		return nil, err
	}
	if c.caData == nil {
		c.caData, err = os.ReadFile(filepath.Join(dir, "certs", "apiserver.crt"))
		if err != nil {
			return nil, fmt.Errorf("unable to read the kube-apiserver serving certificate: %w", err)
		}
	}
	if err := c.checkCA(ctx); err != nil {
		return nil, err
	}
	c.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(c.AdminConfig(), c.kubeconfig); err != nil {
		return nil, err
	}
	return c, nil
}

// memberName returns base for the only member of its kind, base-i
// otherwise.
func memberName(base string, i, n int) string {
	if n == 1 {
		return base
	}
	return base + "-" + strconv.Itoa(i)
}

// allMembers returns 0, ..., n-1.
func allMembers(n int) []int {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// URL returns the base URL of the API server, https://127.0.0.1:<port>: that
// of kube-apiserver, or of the load balancer in front of the kube-apiservers
// when there are several.
func (c *ControlPlane) URL() string { return c.url }

// Kubeconfig returns the path of a kubeconfig file for the admin user.
func (c *ControlPlane) Kubeconfig() string { return c.kubeconfig }

// PIDs returns the process IDs of kube-apiserver and etcd, or 0 for a
// process that is not running. With several members, they are those of
// member 0; see [ControlPlane.MemberPIDs].
func (c *ControlPlane) PIDs() (apiserver, etcd int) {
	return c.apiservers[0].runningPID(), c.etcds[0].runningPID()
}

// Members returns the number of kube-apiservers: 1, or 3 with Options.HA.
func (c *ControlPlane) Members() int { return len(c.apiservers) }

// EtcdMembers returns the number of etcd members: 1, or 3 with Options.HA.
func (c *ControlPlane) EtcdMembers() int { return len(c.etcds) }

// MemberPIDs returns the process IDs of every kube-apiserver and etcd
// member, indexed by member, with 0 for a member that is not running.
func (c *ControlPlane) MemberPIDs() (apiservers, etcd []int) {
	for _, p := range c.apiservers {
		apiservers = append(apiservers, p.runningPID())
	}
	for _, p := range c.etcds {
		etcd = append(etcd, p.runningPID())
	}
	return apiservers, etcd
}

// MemberURL returns the base URL of kube-apiserver member i, bypassing the
// load balancer. Its certificate verifies with the CA data of the
// rest.Configs. It panics if i is out of range.
func (c *ControlPlane) MemberURL(i int) string {
	c.checkMember("kube-apiserver", i, len(c.apiservers))
	return c.apiserverURLs[i]
}

// InRotation returns the kube-apiserver members that the load balancer
// routes new connections to: those whose last health check (GET /readyz,
// every 250 milliseconds) passed and that did not refuse a connection
// since. Without a load balancer, when there is one kube-apiserver, it
// returns nil.
func (c *ControlPlane) InRotation() []int {
	if c.lb == nil {
		return nil
	}
	return c.lb.inRotation()
}

// AdminConfig returns a new rest.Config for the admin user, a member of
// system:masters.
func (c *ControlPlane) AdminConfig() *rest.Config {
	return c.TokenConfig(c.tokens[AdminUser])
}

// UserConfig returns a new rest.Config for a user of the static token file:
// [AdminUser] or [UnprivilegedUser].
func (c *ControlPlane) UserConfig(name string) (*rest.Config, error) {
	token, ok := c.tokens[name]
	if !ok {
		return nil, fmt.Errorf("unable to authenticate as %q: unknown user", name)
	}
	return c.TokenConfig(token), nil
}

// TokenConfig returns a new rest.Config that authenticates with a bearer
// token and trusts the API server's certificate.
func (c *ControlPlane) TokenConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.url,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caData},
	}
}

// ServiceAccountConfig returns a new rest.Config that authenticates as the
// ServiceAccount system:serviceaccount:<namespace>:<name>, with a token valid
// for an hour from the TokenRequest API. It creates the namespace and the
// ServiceAccount if they do not exist.
func (c *ControlPlane) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	client, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return nil, fmt.Errorf("unable to create an admin client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("unable to create namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("unable to create ServiceAccount %s/%s: %w", namespace, name, err)
	}
	ttl := int64(serviceAccountTTL / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("unable to create a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return c.TokenConfig(tr.Status.Token), nil
}

// StopAPIServer stops kube-apiserver, leaving etcd running. It is a no-op if
// kube-apiserver is not running. With several kube-apiservers, it stops all
// of them.
func (c *ControlPlane) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	stopAll(c.apiservers)
}

// StartAPIServer starts kube-apiserver again, on the same port and with the
// same certificates, and waits until it is ready. With several
// kube-apiservers, it starts those that are not running and waits until the
// load balancer routes to them. It fails if every kube-apiserver is running.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("unable to start kube-apiserver: the control plane is stopped")
	}
	return c.startAPIServers(ctx, stoppedOrAll(c.apiservers))
}

// StopEtcd stops etcd, leaving kube-apiserver running (and failing). It is a
// no-op if etcd is not running. With several etcd members, it stops all of
// them.
func (c *ControlPlane) StopEtcd() {
	c.mu.Lock()
	defer c.mu.Unlock()
	stopAll(c.etcds)
}

// StartEtcd starts etcd again, on the same ports and data directory, and
// waits until it is healthy. With several etcd members, it starts those that
// are not running. It fails if every member is running.
func (c *ControlPlane) StartEtcd(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("unable to start etcd: the control plane is stopped")
	}
	return c.startEtcd(ctx, stoppedOrAll(c.etcds))
}

// StopAPIServerMember stops kube-apiserver member i (SIGTERM, then SIGKILL
// after 5 seconds). It is a no-op if the member is not running. The load
// balancer finds out as a cloud load balancer would: by a failing health
// check or a refused connection. Connections proxied to the member break.
// It panics if i is out of range.
func (c *ControlPlane) StopAPIServerMember(i int) {
	c.checkMember("kube-apiserver", i, len(c.apiservers))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiservers[i].stop()
}

// StartAPIServerMember starts kube-apiserver member i again, on the same port
// and with the same certificate, and waits until it is ready and the load
// balancer routes to it. The member must not be running. It panics if i is
// out of range.
func (c *ControlPlane) StartAPIServerMember(ctx context.Context, i int) error {
	c.checkMember("kube-apiserver", i, len(c.apiservers))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("unable to start %s: the control plane is stopped", c.apiservers[i].name)
	}
	return c.startAPIServers(ctx, []int{i})
}

// StopEtcdMember stops etcd member i (SIGTERM, then SIGKILL after 5
// seconds), leaving the others running. It is a no-op if the member is not
// running. It panics if i is out of range.
func (c *ControlPlane) StopEtcdMember(i int) {
	c.checkMember("etcd", i, len(c.etcds))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcds[i].stop()
}

// StartEtcdMember starts etcd member i again, on the same ports and data
// directory, and waits until it is healthy: it has rejoined the cluster,
// which has a leader. The member must not be running. It panics if i is out
// of range.
func (c *ControlPlane) StartEtcdMember(ctx context.Context, i int) error {
	c.checkMember("etcd", i, len(c.etcds))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("unable to start %s: the control plane is stopped", c.etcds[i].name)
	}
	return c.startEtcd(ctx, []int{i})
}

// Stop stops kube-apiserver and etcd (SIGTERM, then SIGKILL after 5 seconds)
// and removes the temporary directory. Calling it again does nothing. With
// several members, it first closes the load balancer and its connections,
// then stops the kube-apiservers together, then the etcd members one by
// one.
func (c *ControlPlane) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	if c.lb != nil {
		c.lb.close()
	}
	stopAll(c.apiservers)
	// One at a time: an etcd leader stopping hands its leadership over to a
	// peer, and waits for it, up to our SIGKILL, if that peer stops too.
	for _, p := range c.etcds {
		p.stop()
	}
	c.probe.CloseIdleConnections()
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("unable to remove the control plane directory: %w", err)
	}
	return nil
}

func (c *ControlPlane) checkMember(kind string, i, n int) {
	if i < 0 || i >= n {
		panic(fmt.Sprintf("controlplane: %s member %d out of range: the control plane has %d", kind, i, n))
	}
}

// stopAll stops the processes together.
func stopAll(ps []*process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// stoppedOrAll returns the indexes of the processes that are not running
// or, if all are running, of all of them, whose start then fails.
func stoppedOrAll(ps []*process) []int {
	var idx []int
	for i, p := range ps {
		if p.runningPID() == 0 {
			idx = append(idx, i)
		}
	}
	if idx == nil {
		return allMembers(len(ps))
	}
	return idx
}

// startEtcd starts the etcd members idx, all before waiting for any: a
// member of a cluster that lost its quorum is only healthy once enough
// others are back.
func (c *ControlPlane) startEtcd(ctx context.Context, idx []int) error {
	for _, i := range idx {
		if err := c.etcds[i].start(); err != nil {
			return err
		}
	}
	return c.waitAll(ctx, idx, func(ctx context.Context, i int) error {
		p := c.etcds[i]
		err := c.waitReady(ctx, p, func(ctx context.Context) error {
			body, err := c.get(ctx, c.etcdURLs[i]+"/health")
			if err != nil {
				return err
			}
			if !strings.Contains(body, `"health":"true"`) {
				return fmt.Errorf("etcd is not healthy: %s", body)
			}
			return nil
		})
		if err != nil {
			return c.startError(p, err)
		}
		return nil
	})
}

// startAPIServers starts the kube-apiservers idx and waits until they are
// ready and, with a load balancer, in its rotation.
func (c *ControlPlane) startAPIServers(ctx context.Context, idx []int) error {
	for _, i := range idx {
		if err := c.apiservers[i].start(); err != nil {
			return err
		}
	}
	return c.waitAll(ctx, idx, func(ctx context.Context, i int) error {
		p := c.apiservers[i]
		err := c.waitReady(ctx, p, func(ctx context.Context) error {
			return c.checkReadyz(ctx, c.apiserverURLs[i])
		})
		if err != nil {
			return c.startError(p, err)
		}
		if c.lb == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		if err := c.lb.waitInRotation(ctx, i); err != nil {
			return fmt.Errorf("%s is ready but the load balancer does not route to it: %w", p.name, err)
		}
		return nil
	})
}

// waitAll calls wait for each member of idx concurrently and returns the
// first error; the first error cancels the other waits.
func (c *ControlPlane) waitAll(ctx context.Context, idx []int, wait func(context.Context, int) error) error {
	if len(idx) == 1 {
		return wait(ctx, idx[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, i := range idx {
		wg.Go(func() {
			if err := wait(ctx, i); err != nil {
				once.Do(func() {
					first = err
					cancel()
				})
			}
		})
	}
	wg.Wait()
	return first
}

// checkReadyz checks that GET <url>/readyz answers "ok" to the admin user.
func (c *ControlPlane) checkReadyz(ctx context.Context, url string) error {
	body, err := c.get(ctx, url+"/readyz")
	if err != nil {
		return err
	}
	if body != "ok" {
		return fmt.Errorf("kube-apiserver is not ready: %s", body)
	}
	return nil
}

// checkCA checks that the serving certificate verifies with the CA data that
// the client configurations use.
func (c *ControlPlane) checkCA(ctx context.Context) error {
	client, err := rest.HTTPClientFor(c.AdminConfig())
	if err != nil {
		return fmt.Errorf("unable to create an admin HTTP client: %w", err)
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("unable to create a request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("unable to reach kube-apiserver with its serving certificate: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unable to reach kube-apiserver with its serving certificate: %s", resp.Status)
	}
	return nil
}

// get performs a GET as the admin user and returns the body of a 200 answer.
func (c *ControlPlane) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[AdminUser])
	resp, err := c.probe.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// waitReady polls check until it succeeds, the process exits, ctx is done or
// the start timeout expires.
func (c *ControlPlane) waitReady(ctx context.Context, p *process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	r := p.last()
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-r.done:
			return r.exitError(p.name)
		case <-ctx.Done():
			if cause := ctx.Err(); errors.Is(cause, context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s: %w", c.timeout, err)
			}
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// startError stops p, which failed to become ready, and describes the
// failure with the end of the logs: those of kube-apiserver, or of p if it
// is one of several kube-apiservers, and of every etcd member.
func (c *ControlPlane) startError(p *process, err error) error {
	p.stop()
	var logs strings.Builder
	for _, a := range c.apiservers {
		if a == p || (len(c.apiservers) == 1 && a.last() != nil) {
			fmt.Fprintf(&logs, "last %d lines of the %s log:\n%s", logTailLines, a.name, a.logTail(logTailLines))
		}
	}
	for _, e := range c.etcds {
		fmt.Fprintf(&logs, "last %d lines of the %s log:\n%s", logTailLines, e.name, e.logTail(logTailLines))
	}
	cause := err
	if strings.Contains(logs.String(), "address already in use") {
		cause = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("unable to start %s: %w\n%s", p.name, cause, logs.String())
}

// writeTokens generates a token for each user and writes the static token
// file of kube-apiserver.
func (c *ControlPlane) writeTokens() (string, error) {
	c.tokens = map[string]string{}
	var file strings.Builder
	for _, u := range []struct{ name, groups string }{
		{AdminUser, "system:masters"},
		{UnprivilegedUser, ""},
	} {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("unable to generate a token: %w", err)
		}
		token := hex.EncodeToString(b)
		c.tokens[u.name] = token
		// token,user,uid[,"group1,group2"]
		fmt.Fprintf(&file, "%s,%s,%s", token, u.name, u.name)
		if u.groups != "" {
			fmt.Fprintf(&file, ",%q", u.groups)
		}
		file.WriteString("\n")
	}
	path := filepath.Join(c.dir, "tokens.csv")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		return "", fmt.Errorf("unable to write the token file: %w", err)
	}
	return path, nil
}

// writeServiceAccountKeys generates the RSA key that signs ServiceAccount
// tokens and writes its private and public halves in PEM files.
func writeServiceAccountKeys(dir string) (keyPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("unable to generate the ServiceAccount key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("unable to encode the ServiceAccount public key: %w", err)
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("unable to write the ServiceAccount key: %w", err)
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("unable to write the ServiceAccount public key: %w", err)
	}
	return keyPath, pubPath, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago. All listeners are open at once so that the ports differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("unable to find a free port: %w", err)
		}
		defer l.Close() //nolint:revive,gocritic // all stay open until return, so that the ports differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// removeStaleDirs removes the temporary directories of control planes whose
// owner process is gone: one that crashed could not stop its control plane,
// whose children the kernel killed, nor remove its directory.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}
