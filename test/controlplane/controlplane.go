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

// EnvVerbose, set to 1, copies the output of etcd and kube-apiserver to
// Options.Out as if Options.Verbose were set.
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
	APIServerArgs []string
}

// ControlPlane is a running etcd and kube-apiserver listening on loopback
// ports, with all their state in a temporary directory. Its methods are safe
// for concurrent use.
type ControlPlane struct {
	dir        string
	url        string
	caData     []byte
	tokens     map[string]string // user name to bearer token
	kubeconfig string
	timeout    time.Duration

	etcd      *process
	etcdURL   string
	apiserver *process

	// probe polls the readiness endpoints; it skips certificate verification
	// because the serving certificate is only created by kube-apiserver.
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

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClientPort, etcdPeerPort, apiserverPort := ports[0], ports[1], ports[2]
	c.etcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdClientPort)
	c.url = "https://127.0.0.1:" + strconv.Itoa(apiserverPort)

	tokenFile, err := c.writeTokens()
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := writeServiceAccountKeys(dir)
	if err != nil {
		return nil, err
	}

	var verbose io.Writer
	if opts.Verbose {
		verbose = opts.Out
		if verbose == nil {
			verbose = os.Stderr
		}
	}
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	c.etcd = &process{
		name: "etcd",
		path: etcdPath,
		args: []string{
			"--name=elector",
			"--data-dir=" + filepath.Join(dir, "etcd"),
			"--listen-client-urls=" + c.etcdURL,
			"--advertise-client-urls=" + c.etcdURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=elector=" + peerURL,
			"--initial-cluster-state=new",
			// The data is thrown away; durability is not worth the latency.
			"--unsafe-no-fsync",
		},
		logPath: filepath.Join(dir, "etcd.log"),
		verbose: verbose,
	}
	c.apiserver = &process{
		name: "kube-apiserver",
		path: apiserverPath,
		args: append([]string{
			"--etcd-servers=" + c.etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiserverPort),
			// kube-apiserver writes a self-signed serving certificate here.
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--authorization-mode=Node,RBAC",
			"--token-auth-file=" + tokenFile,
			"--service-account-key-file=" + saPub,
			"--service-account-signing-key-file=" + saKey,
			"--service-account-issuer=" + ServiceAccountIssuer,
			"--api-audiences=" + ServiceAccountIssuer,
			"--service-cluster-ip-range=10.0.0.0/24",
			// Without a controller manager nothing cleans up endpoints of
			// apiservers, and 127.0.0.1 is not a valid endpoint address.
			"--endpoint-reconciler-type=none",
		}, opts.APIServerArgs...),
		logPath: filepath.Join(dir, "kube-apiserver.log"),
		verbose: verbose,
	}

	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return nil, err
	}
	c.caData, err = os.ReadFile(filepath.Join(dir, "certs", "apiserver.crt"))
	if err != nil {
		return nil, fmt.Errorf("unable to read the kube-apiserver serving certificate: %w", err)
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

// URL returns the base URL of the API server, https://127.0.0.1:<port>.
func (c *ControlPlane) URL() string { return c.url }

// Kubeconfig returns the path of a kubeconfig file for the admin user.
func (c *ControlPlane) Kubeconfig() string { return c.kubeconfig }

// PIDs returns the process IDs of kube-apiserver and etcd, or 0 for a
// process that is not running.
func (c *ControlPlane) PIDs() (apiserver, etcd int) {
	return c.apiserver.runningPID(), c.etcd.runningPID()
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
// kube-apiserver is not running.
func (c *ControlPlane) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiserver.stop()
}

// StartAPIServer starts kube-apiserver again, on the same port and with the
// same certificates, and waits until it is ready.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("unable to start kube-apiserver: the control plane is stopped")
	}
	return c.startAPIServer(ctx)
}

// StopEtcd stops etcd, leaving kube-apiserver running (and failing). It is a
// no-op if etcd is not running.
func (c *ControlPlane) StopEtcd() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcd.stop()
}

// StartEtcd starts etcd again, on the same ports and data directory, and
// waits until it is healthy.
func (c *ControlPlane) StartEtcd(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("unable to start etcd: the control plane is stopped")
	}
	return c.startEtcd(ctx)
}

// Stop stops kube-apiserver and etcd (SIGTERM, then SIGKILL after 5 seconds)
// and removes the temporary directory. Calling it again does nothing.
func (c *ControlPlane) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	if c.apiserver != nil {
		c.apiserver.stop()
	}
	if c.etcd != nil {
		c.etcd.stop()
	}
	c.probe.CloseIdleConnections()
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("unable to remove the control plane directory: %w", err)
	}
	return nil
}

func (c *ControlPlane) startEtcd(ctx context.Context) error {
	if err := c.etcd.start(); err != nil {
		return err
	}
	err := c.waitReady(ctx, c.etcd, func(ctx context.Context) error {
		body, err := c.get(ctx, c.etcdURL+"/health")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("etcd is not healthy: %s", body)
		}
		return nil
	})
	if err != nil {
		return c.startError(c.etcd, err)
	}
	return nil
}

func (c *ControlPlane) startAPIServer(ctx context.Context) error {
	if err := c.apiserver.start(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, c.apiserver, c.checkReadyz); err != nil {
		return c.startError(c.apiserver, err)
	}
	return nil
}

// checkReadyz checks that GET /readyz answers "ok" to the admin user.
func (c *ControlPlane) checkReadyz(ctx context.Context) error {
	body, err := c.get(ctx, c.url+"/readyz")
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
// failure with the end of both logs.
func (c *ControlPlane) startError(p *process, err error) error {
	p.stop()
	logs := fmt.Sprintf("last %d lines of the etcd log:\n%s", logTailLines, c.etcd.logTail(logTailLines))
	if c.apiserver.last() != nil {
		logs = fmt.Sprintf("last %d lines of the kube-apiserver log:\n%s", logTailLines, c.apiserver.logTail(logTailLines)) + logs
	}
	var cause error = err
	if strings.Contains(logs, "address already in use") {
		cause = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("unable to start %s: %w\n%s", p.name, cause, logs)
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
		defer l.Close()
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
