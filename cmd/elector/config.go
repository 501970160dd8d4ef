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
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/elector-dev/elector/shard"
)

// Timing. The old image derived everything from --ttl (lease = ttl, renew
// deadline = ttl/2, retry = ttl/4); elector keeps --ttl as the only knob and
// derives, for a ttl of T:
//
//	lease duration  T       how long followers wait out a silent leader
//	renew deadline  3T/5    the leader's work must have stopped by last renewal + 3T/5
//	retry period    2T/15   renewal interval: client-go's defaults (15s/10s/2s)
//	                        scaled to the same lease, so a leader costs no more
//	                        writes than client-go's (client-go rule: renew > 1.2 × retry)
//	stop budget     T/5     from cancelling the leader work to the renew deadline
//	                        (the library's StopGrace; it must be < renew − retry)
//	command grace   T/10    SIGTERM → SIGKILL for the command (must be < stop budget,
//	                        leaving T/10 to kill, reap and unlabel)
//	heartbeat       T/40    watchdog heartbeat interval
//
// With the default ttl of 10s: 10s / 6s / 1.33s, stop budget 2s, grace 1s,
// heartbeat 250ms. The leader cancels its work at 2T/5 after its last
// successful renewal; the first renewal comes at 2T/15 and a failed one is
// retried at twice the pace (T/15), so four attempts fit before it gives
// up: one slow request does not end a tenure. The gap between lease
// duration and renew deadline (2T/5) is the margin for clock-rate
// differences (a quarter) and watchdog latency: a leader has stopped acting
// 2T/5 before any follower may take over.
const (
	defaultTTL = 10 * time.Second
	// minTTL keeps the derived renew deadline (3ttl/5) above the library's
	// minimum API request timeout of 1s. leader-elector:0.5 accepted any
	// --ttl; a shorter one is refused with a hint naming the migration
	// guide, rather than accepted with scaled-down margins: at 1s the renew deadline would be 600ms, inside one
	// slow request of a busy API server, and the command's stop budget
	// 200ms.
	minTTL = 3 * time.Second
	// maxTTL bounds how long a vanished leader can block the election,
	// and keeps the derived durations far from overflow.
	maxTTL = time.Hour

	renewNumerator   = 3
	renewDivisor     = 5
	retryNumerator   = 2
	retryDivisor     = 15
	stopDivisor      = 5
	graceDivisor     = 10
	heartbeatDivisor = 40
)

// The API client's rate limit, --kube-api-qps and --kube-api-burst (the
// names of kube-controller-manager, kube-scheduler and the kubelet),
// applied to each of the sidecar's API clients: the Leases have one to
// themselves; Events and Pod labels share another.
const (
	// defaultKubeAPIQPS and defaultKubeAPIBurst are controller-runtime's
	// defaults. With client-go's own (QPS 5, burst 10) a --shards
	// coordinator's renewal waited in the limiter past its stop point
	// (test/shard, docs/sharding.md): member renewals, the coordinator's
	// renewal and a rebalancing's assignment writes share the one Lease
	// client. With the default --ttl (retry period 1.33s) 20 QPS allow
	// about 26 requests per retry period, and the burst of 30 absorbs a
	// rebalancing's writes; test/shard and the chaos harness run with the
	// same values. One election uses under one request per retry period.
	defaultKubeAPIQPS   = 20
	defaultKubeAPIBurst = 30
	// maxKubeAPIQPS and maxKubeAPIBurst only reject typos: beyond them
	// the limiter no longer limits anything the sidecar sends.
	maxKubeAPIQPS   = 10000
	maxKubeAPIBurst = 100000
)

// addrOff is the value of --health-probe-bind-address and
// --metrics-bind-address that serves those endpoints nowhere, as in
// controller-runtime.
const addrOff = "0"

// In-cluster defaults.
const (
	// serviceAccountNamespaceFile holds the Pod's namespace when a
	// ServiceAccount token is mounted.
	serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
	envPodName                  = "POD_NAME"
	envPodNamespace             = "POD_NAMESPACE"
)

// config is the validated command line.
type config struct {
	election   string // Lease name
	namespace  string // Lease namespace
	identity   string
	httpAddr   string // "" = no HTTP server
	kubeconfig string

	// probeAddr and metricsAddr are --health-probe-bind-address and
	// --metrics-bind-address: "" serves those endpoints on --http (as
	// 0.5 users expect nothing else), addrOff serves them nowhere, else
	// they are served on a listener of their own and not on --http.
	probeAddr, metricsAddr string

	// kubeAPIQPS and kubeAPIBurst are the client's rate limit
	// (--kube-api-qps, --kube-api-burst).
	kubeAPIQPS   float32
	kubeAPIBurst int

	maxWatchers int // most /watch streams at once (limits.go)

	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	stopGrace     time.Duration // library StopGrace
	grace         time.Duration // command SIGTERM → SIGKILL
	heartbeat     time.Duration // watchdog heartbeat interval

	labelKey, labelValue string // empty key = no leader label
	podName              string // own Pod, for the leader label
	podNamespace         string

	events              bool
	skipPermissionCheck bool
	logFormat           string // "text" or "json"
	logLevel            slog.Level

	command []string // exec mode when non-empty

	// migrateFrom is the kind of old lock to hold together with the Lease
	// ("endpoints" for leader-elector:0.5; "" = no migration), in
	// migrateNamespace under the election's name.
	migrateFrom      string
	migrateNamespace string

	// shards is K in the sharded mode (package shard, the group named by
	// election); 0 = one election.
	shards int
}

// usageError is a command-line problem with its exit code. Its message is
// one line that names what is wrong and how to fix it.
type usageError struct {
	code int
	msg  string
}

func (e *usageError) Error() string { return "elector: " + e.msg }

func usagef(format string, args ...any) error {
	return &usageError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

func configf(format string, args ...any) error {
	return &usageError{code: ExitConfig, msg: fmt.Sprintf(format, args...)}
}

// errHelp and errVersion ask run to print the usage or version and exit 0.
var (
	errHelp    = errors.New("help requested")
	errVersion = errors.New("version requested")
)

// environment is what parseConfig reads besides the arguments; tests
// replace it.
type environment struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	hostname func() (string, error)
	lookPath func(string) (string, error)
	// kubeconfigNamespace is the namespace of the current context of the
	// kubeconfig that credentials would come from outside a cluster
	// (--kubeconfig, else $KUBECONFIG, else ~/.kube/config); "" if none.
	kubeconfigNamespace func(kubeconfig string) string
}

func osEnvironment() environment {
	return environment{getenv: os.Getenv, readFile: os.ReadFile, hostname: os.Hostname, lookPath: exec.LookPath, kubeconfigNamespace: kubeconfigNamespace}
}

// stringValue and boolValue record the raw text of a flag; parseConfig
// converts it, so that every bad value gets the same kind of message.
type stringValue struct {
	s   string
	set bool
}

func (v *stringValue) String() string     { return v.s }
func (v *stringValue) Set(s string) error { v.s, v.set = s, true; return nil }

type boolValue struct{ stringValue }

func (v *boolValue) IsBoolFlag() bool { return true }

// flags holds the raw command line.
type flags struct {
	election, namespace, httpAddr, id, ttl, kubeconfig stringValue
	leaderLabel, grace, logFormat, logLevel            stringValue
	maxWatchers                                        stringValue
	useClusterCredentials, skipPermissionCheck, events boolValue
	help, version                                      boolValue
	migrateFrom, migrateNamespace                      stringValue
	shards                                             stringValue
	probeAddr, metricsAddr                             stringValue
	kubeAPIQPS, kubeAPIBurst                           stringValue
}

func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("elector", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(&f.election, "election", "name of the Lease to campaign for (required)")
	fs.Var(&f.namespace, "election-namespace", "namespace of the Lease (default: the Pod's namespace, else $POD_NAMESPACE, else the kubeconfig context's namespace, else \"default\")")
	fs.Var(&f.httpAddr, "http", "listen address of the HTTP server, e.g. :4444 or 127.0.0.1:0 (default: no server)")
	fs.Var(&f.probeAddr, "health-probe-bind-address", "listen address of /healthz and /readyz alone, e.g. :8081; then not served on --http; 0 serves them nowhere (default: on --http)")
	fs.Var(&f.metricsAddr, "metrics-bind-address", "listen address of /metrics alone, e.g. :8080; then not served on --http; 0 serves it nowhere (default: on --http)")
	fs.Var(&f.maxWatchers, "max-watchers", fmt.Sprintf("most /watch streams open at once; more get 503 with Retry-After (default %d)", defaultMaxWatchers))
	fs.Var(&f.id, "id", "identity of this replica in the Lease (default: $POD_NAME, else the hostname)")
	fs.Var(&f.ttl, "ttl", "lease duration; renew deadline 3×ttl/5, retry period 2×ttl/15, stop budget ttl/5 (default 10s)")
	fs.Var(&f.useClusterCredentials, "use-cluster-credentials", "accepted for compatibility with leader-elector:0.5; no effect (in a Pod, in-cluster credentials are used unless --kubeconfig or $KUBECONFIG names a kubeconfig)")
	fs.Var(&f.kubeconfig, "kubeconfig", "kubeconfig file (default: $KUBECONFIG, else in-cluster credentials, else ~/.kube/config, as kubectl and controller-runtime)")
	fs.Var(&f.kubeAPIQPS, "kube-api-qps", fmt.Sprintf("requests per second to the API server, for each API client (the Leases have one to themselves) (default %d, controller-runtime's; client-go's 5 starved a --shards coordinator)", defaultKubeAPIQPS))
	fs.Var(&f.kubeAPIBurst, "kube-api-burst", fmt.Sprintf("requests to the API server allowed at once beyond --kube-api-qps, for each API client (default %d)", defaultKubeAPIBurst))
	fs.Var(&f.leaderLabel, "leader-label", "KEY=VALUE label set on the leader's Pod and removed from all others; needs $POD_NAME (Downward API)")
	fs.Var(&f.grace, "grace", "with a command: time between SIGTERM and SIGKILL when leadership ends (default ttl/10; must be < ttl/5)")
	fs.Var(&f.events, "events", "record BecameLeader, StoppedLeading and HandedOff Events on the Lease (default true)")
	fs.Var(&f.skipPermissionCheck, "skip-permission-check", "do not check RBAC permissions with SelfSubjectAccessReviews at start")
	fs.Var(&f.logFormat, "log-format", "text or json (default text)")
	fs.Var(&f.logLevel, "log-level", "debug, info, warn or error (default info)")
	fs.Var(&f.migrateFrom, "migrate-from", "endpoints (leader-elector:0.5) or configmaps: also hold that old lock of the same name while leading, for a rolling update from the old image with never two leaders (docs/migrating-from-leader-elector.md)")
	fs.Var(&f.migrateNamespace, "migrate-namespace", "with --migrate-from: namespace of the old lock (default: the value of --election-namespace when given, else \"default\": where leader-elector:0.5 kept it with the same flags)")
	fs.Var(&f.shards, "shards", fmt.Sprintf("K: spread shards 0..K-1 over the replicas of the group named by --election (1 to %d); a command runs once per owned shard, with $ELECTOR_SHARD and $ELECTOR_TOKEN (docs/sharding.md)", shard.MaxShards))
	fs.Var(&f.help, "h", "print this help")
	fs.Var(&f.help, "help", "print this help")
	fs.Var(&f.version, "version", "print the version")
	return fs
}

// usage is printed for -h only.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: elector --election=NAME [flags] [-- COMMAND [ARGS...]]

Campaigns for the coordination.k8s.io/v1 Lease NAME. Without a command it
reports the leader (HTTP, Pod label, Events) like k8s.gcr.io/leader-elector:0.5.
With a command, it runs COMMAND only while this replica leads and exits with
its exit code.

Flags:
`)
	var f flags
	fs := newFlagSet(&f)
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name == "h" {
			return
		}
		fmt.Fprintf(w, "  --%s\n    \t%s\n", fl.Name, fl.Usage)
	})
	fmt.Fprint(w, `
HTTP endpoints (with --http):
  /          {"name":"<leader>"} on every other path and method, as the 0.5 image
  /leader    {"name","isLeader","since","token","expiry","identity"}, plus
             "error" and "fix" while the API server is unreachable or denies
  /watch     Server-Sent Events: one "leader" event per change
  /shards    with --shards: this replica's running shards and every shard's owner
             and token (JSON); /watch then streams one "shards" event per change
  /healthz   200 unless leader work overran its deadline
  /readyz    200 once the Lease has been read, and from then on (not gated on
             leadership); before that 503 with the reason
`)
	printMetrics(w)
	fmt.Fprint(w, `  /healthz and /readyz move to --health-probe-bind-address, /metrics to
  --metrics-bind-address when given (--http then answers 404 there); with 0
  they are served nowhere.
  With --shards, / and every path other than /watch, /healthz, /readyz and
  /metrics answer the shards document (as /shards); /leader is not served.
  The port answers anyone who can reach it; what a client can hold is
  bounded (--max-watchers streams, a connection cap shared fairly among
  client addresses, timeouts), so no Pod can make elector run out of memory.

Environment of the command (exec mode), besides elector's own:
  ELECTOR_TOKEN     fencing token of this tenure (of the shard, with --shards)
  ELECTOR_IDENTITY  this replica's identity (--id)
  ELECTOR_LEASE     NAMESPACE/NAME of the Lease (of the group, with --shards)
  ELECTOR_SHARD     with --shards: the shard number, 0 to K-1

Exit codes:
  0  shut down by SIGTERM/SIGINT (the Lease was released), or --version/-h
  1  unexpected runtime error
  2  bad command line (unknown flag, missing --election, stray argument)
  3  invalid flag value
  4  missing RBAC permissions at start, after 15s of re-checks (the Role to
     grant is printed); lost at runtime, they are retried, not an exit
  5  no credentials, or credentials rejected (an unreachable API server is
     waited for, not an exit)
  6  leadership lost with a command (the command was stopped), also when
     the API server was unreachable until the renew deadline: the
     restarted container campaigns again (without a command elector never
     exits for a lost lease or an outage; with --shards a lost shard's
     command is stopped and elector goes on)
  7  leader work did not stop before the renew deadline
  With a command that exits by itself: the command's exit code.
`)
}

// parseConfig validates the command line in one place. Errors are
// *usageError (one line, exit code) or errHelp / errVersion.
func parseConfig(args []string, env environment) (config, error) {
	var f flags
	fs := newFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return config{}, flagError(err)
	}
	if f.help.set {
		return config{}, errHelp
	}
	if f.version.set {
		return config{}, errVersion
	}

	var c config
	rest := fs.Args()
	// flag stops at "--" (and drops it) or at the first non-flag argument.
	if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
		if len(rest) == 0 {
			return c, usagef("no command after --; use elector [flags] -- COMMAND [ARGS...]")
		}
		c.command = rest
	} else if len(rest) > 0 {
		return c, usagef("unexpected argument %q; to run a command while leading, put it after --: elector [flags] -- COMMAND [ARGS...]", rest[0])
	}

	// Required.
	c.election = f.election.s
	if !f.election.set || c.election == "" {
		return c, usagef("--election is required: the name of the Lease to campaign for, e.g. --election=my-app")
	}
	if errs := validation.IsDNS1123Subdomain(c.election); len(errs) > 0 {
		return c, configf("--election=%s: invalid Lease name: %s", c.election, errs[0])
	}

	// Booleans.
	for _, b := range []struct {
		name string
		v    *boolValue
		def  bool
		dst  *bool
	}{
		{"use-cluster-credentials", &f.useClusterCredentials, false, new(bool)},
		{"skip-permission-check", &f.skipPermissionCheck, false, &c.skipPermissionCheck},
		{"events", &f.events, true, &c.events},
	} {
		*b.dst = b.def
		if !b.v.set {
			continue
		}
		v, err := strconv.ParseBool(b.v.s)
		if err != nil {
			return c, configf("--%s=%s: invalid boolean; use --%s=true or --%s=false", b.name, b.v.s, b.name, b.name)
		}
		*b.dst = v
	}

	// Logging.
	c.logFormat = "text"
	if f.logFormat.set {
		c.logFormat = f.logFormat.s
		if c.logFormat != "text" && c.logFormat != "json" {
			return c, configf("--log-format=%s: must be text or json", f.logFormat.s)
		}
	}
	if f.logLevel.set {
		if err := c.logLevel.UnmarshalText([]byte(f.logLevel.s)); err != nil || strings.ContainsAny(f.logLevel.s, "+-") {
			return c, configf("--log-level=%s: must be debug, info, warn or error", f.logLevel.s)
		}
	}

	// Namespace: flag, else the mounted ServiceAccount's namespace (the
	// Pod's), else $POD_NAMESPACE, else (outside a cluster) the namespace
	// of the kubeconfig's current context, as kubectl, else "default".
	podNamespace := ""
	if b, err := env.readFile(serviceAccountNamespaceFile); err == nil {
		podNamespace = strings.TrimSpace(string(b))
	}
	if podNamespace == "" {
		podNamespace = env.getenv(envPodNamespace)
	}
	switch {
	case f.namespace.set:
		c.namespace = f.namespace.s
	case podNamespace != "":
		c.namespace = podNamespace
	default:
		c.namespace = "default"
		if env.kubeconfigNamespace != nil {
			if ns := env.kubeconfigNamespace(f.kubeconfig.s); ns != "" {
				if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
					return c, configf("the kubeconfig's current context names namespace %q: invalid namespace: %s; fix the context or pass --election-namespace", ns, errs[0])
				}
				c.namespace = ns
			}
		}
	}
	if errs := validation.IsDNS1123Label(c.namespace); len(errs) > 0 {
		return c, configf("--election-namespace=%s: invalid namespace: %s", c.namespace, errs[0])
	}

	// Identity.
	c.podName = env.getenv(envPodName)
	switch {
	case f.id.set:
		c.identity = f.id.s
		if c.identity == "" {
			return c, configf("--id is empty; pass a name unique among the replicas, such as the Pod name")
		}
	case c.podName != "":
		c.identity = c.podName
	default:
		h, err := env.hostname()
		if err != nil || h == "" {
			return c, configf("no identity: $%s is unset and the hostname is unknown; pass --id=NAME", envPodName)
		}
		c.identity = h
	}
	if len(c.identity) > maxIdentity {
		return c, configf("--id of %d bytes is too long; use at most %d bytes", len(c.identity), maxIdentity)
	}

	// HTTP.
	if f.httpAddr.set && f.httpAddr.s != "" {
		if err := checkListenAddr("http", f.httpAddr.s, ":4444"); err != nil {
			return c, err
		}
		c.httpAddr = f.httpAddr.s
	}
	for _, a := range []struct {
		name, example string
		v             *stringValue
		dst           *string
	}{
		{"health-probe-bind-address", ":8081", &f.probeAddr, &c.probeAddr},
		{"metrics-bind-address", ":8080", &f.metricsAddr, &c.metricsAddr},
	} {
		if !a.v.set || a.v.s == "" || a.v.s == addrOff {
			*a.dst = a.v.s
			continue
		}
		if err := checkListenAddr(a.name, a.v.s, a.example); err != nil {
			return c, err
		}
		if a.v.s == c.httpAddr && !strings.HasSuffix(a.v.s, ":0") {
			return c, configf("--%s=%s: the same address as --http; use another port, or omit the flag to serve these endpoints on --http", a.name, a.v.s)
		}
		*a.dst = a.v.s
	}
	if c.probeAddr == c.metricsAddr && c.probeAddr != "" && c.probeAddr != addrOff && !strings.HasSuffix(c.probeAddr, ":0") {
		return c, configf("--metrics-bind-address=%s: the same address as --health-probe-bind-address; use another port", c.metricsAddr)
	}

	// The API client's rate limit.
	c.kubeAPIQPS, c.kubeAPIBurst = defaultKubeAPIQPS, defaultKubeAPIBurst
	if f.kubeAPIQPS.set {
		q, err := strconv.ParseFloat(f.kubeAPIQPS.s, 32)
		if err != nil || !(q > 0) || q > maxKubeAPIQPS {
			return c, configf("--kube-api-qps=%s: must be a number of requests per second above 0 and at most %d, such as %d", f.kubeAPIQPS.s, maxKubeAPIQPS, defaultKubeAPIQPS)
		}
		c.kubeAPIQPS = float32(q)
	}
	if f.kubeAPIBurst.set {
		n, err := strconv.Atoi(f.kubeAPIBurst.s)
		if err != nil || n < 1 || n > maxKubeAPIBurst {
			return c, configf("--kube-api-burst=%s: must be a whole number from 1 to %d, such as %d", f.kubeAPIBurst.s, maxKubeAPIBurst, defaultKubeAPIBurst)
		}
		c.kubeAPIBurst = n
	}
	// Migration from an old lock.
	if f.migrateFrom.set {
		switch f.migrateFrom.s {
		case "endpoints", "configmaps":
			c.migrateFrom = f.migrateFrom.s
		default:
			return c, configf("--migrate-from=%s: must be endpoints (leader-elector:0.5) or configmaps", f.migrateFrom.s)
		}
		// Where leader-elector:0.5 kept its lock when run with the same
		// flags: its --election-namespace, default "default" (not the
		// Pod's namespace, elector's own default).
		c.migrateNamespace = "default"
		if f.namespace.set {
			c.migrateNamespace = c.namespace
		}
		if f.migrateNamespace.set {
			c.migrateNamespace = f.migrateNamespace.s
			if errs := validation.IsDNS1123Label(c.migrateNamespace); len(errs) > 0 {
				return c, configf("--migrate-namespace=%s: invalid namespace: %s", c.migrateNamespace, errs[0])
			}
		}
	} else if f.migrateNamespace.set {
		return c, usagef("--migrate-namespace only applies with --migrate-from=endpoints or --migrate-from=configmaps")
	}

	c.maxWatchers = defaultMaxWatchers
	if f.maxWatchers.set {
		n, err := strconv.Atoi(f.maxWatchers.s)
		if err != nil || n < 1 || n > maxMaxWatchers {
			return c, configf("--max-watchers=%s: must be a whole number from 1 to %d", f.maxWatchers.s, maxMaxWatchers)
		}
		c.maxWatchers = n
	}

	c.kubeconfig = f.kubeconfig.s
	if f.kubeconfig.set && c.kubeconfig == "" {
		return c, configf("--kubeconfig is empty; pass the path of a kubeconfig file, or omit the flag to use in-cluster credentials")
	}

	// Timing.
	ttl := defaultTTL
	if f.ttl.set {
		d, err := time.ParseDuration(f.ttl.s)
		switch {
		case err != nil:
			return c, configf("--ttl=%s: invalid duration; use a Go duration such as 10s", f.ttl.s)
		case d < minTTL:
			return c, configf("--ttl=%s: must be at least %v, elector's shortest lease (leader-elector:0.5 accepted shorter ones); use --ttl=%v, and when migrating from 0.5 Pods with a shorter --ttl read docs/migrating-from-leader-elector.md first", f.ttl.s, minTTL, minTTL)
		case d > maxTTL:
			return c, configf("--ttl=%s: must be at most %v; a leader that vanishes blocks the election for one ttl", f.ttl.s, maxTTL)
		case d%time.Second != 0:
			return c, configf("--ttl=%s: must be a whole number of seconds (the Lease stores seconds), such as 10s", f.ttl.s)
		}
		ttl = d
	}
	c.leaseDuration = ttl
	c.renewDeadline = ttl * renewNumerator / renewDivisor
	// Rounded up: never more often than 2/15 of the lease.
	c.retryPeriod = (ttl*retryNumerator + retryDivisor - 1) / retryDivisor
	c.stopGrace = ttl / stopDivisor
	c.grace = ttl / graceDivisor
	c.heartbeat = ttl / heartbeatDivisor
	if f.grace.set {
		if len(c.command) == 0 {
			return c, usagef("--grace only applies to a command run while leading: elector --election=%s --grace=%s -- COMMAND", c.election, f.grace.s)
		}
		d, err := time.ParseDuration(f.grace.s)
		switch {
		case err != nil:
			return c, configf("--grace=%s: invalid duration; use a Go duration such as 2s", f.grace.s)
		case d <= 0:
			return c, configf("--grace=%s: must be positive", f.grace.s)
		case d >= c.stopGrace:
			// The command must be dead before the renew deadline: the stop
			// budget is ttl/5 and the kill itself needs a moment.
			need := max((d*stopDivisor).Truncate(time.Second)+time.Second, minTTL)
			return c, configf("--grace=%s: must be shorter than %v (--ttl/5, the time from losing the lease to the renew deadline); lower --grace or raise --ttl to at least %v",
				f.grace.s, c.stopGrace, need)
		}
		c.grace = d
	}

	// Leader label.
	if f.leaderLabel.set {
		k, v, ok := strings.Cut(f.leaderLabel.s, "=")
		if !ok || k == "" {
			return c, configf("--leader-label=%s: must be KEY=VALUE, such as --leader-label=elector.dev/leader=true", f.leaderLabel.s)
		}
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			return c, configf("--leader-label=%s: invalid label key %q: %s", f.leaderLabel.s, k, errs[0])
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			return c, configf("--leader-label=%s: invalid label value %q: %s", f.leaderLabel.s, v, errs[0])
		}
		if c.podName == "" {
			return c, configf("--leader-label needs the Pod's name in $%s; add it with the Downward API (env: [{name: %s, valueFrom: {fieldRef: {fieldPath: metadata.name}}}])", envPodName, envPodName)
		}
		if podNamespace == "" {
			return c, configf("--leader-label needs the Pod's namespace in $%s; add it with the Downward API (env: [{name: %s, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}])", envPodNamespace, envPodNamespace)
		}
		if errs := validation.IsDNS1123Subdomain(c.podName); len(errs) > 0 {
			return c, configf("$%s=%s: invalid Pod name: %s", envPodName, c.podName, errs[0])
		}
		c.labelKey, c.labelValue, c.podNamespace = k, v, podNamespace
	}

	// Sharded mode.
	if f.shards.set {
		n, err := strconv.Atoi(f.shards.s)
		switch {
		case err != nil || n < 1 || n > shard.MaxShards:
			return c, configf("--shards=%s: must be a whole number from 1 to %d", f.shards.s, shard.MaxShards)
		case c.migrateFrom != "":
			return c, configf("--shards cannot be combined with --migrate-from: a sharded group has no old lock to migrate from")
		case c.labelKey != "":
			return c, configf("--shards cannot be combined with --leader-label: every replica owns shards; select the Pods by another label")
		case len(c.election) > shardGroupMax || len(validation.IsDNS1123Label(c.election)) > 0:
			return c, configf("--election=%s: with --shards it names the group and must be a DNS-1123 label of at most %d characters (its Leases are NAME-shards, NAME-coordinator and NAME-m-<hash>)", c.election, shardGroupMax)
		}
		c.shards = n
	}

	// Command: fail now rather than when first elected.
	if len(c.command) > 0 {
		if _, err := env.lookPath(c.command[0]); err != nil {
			return c, configf("command %q: %s", c.command[0], lookPathErr(err))
		}
	}
	return c, nil
}

// checkListenAddr validates the HOST:PORT of the flag name.
func checkListenAddr(name, addr, example string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return configf("--%s=%s: invalid listen address (%s); use HOST:PORT such as %s or 127.0.0.1:0", name, addr, addrErr(err), example)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return configf("--%s=%s: invalid port %q; use a number from 0 to 65535", name, addr, port)
	}
	return nil
}

// shardGroupMax is package shard's limit on the group name.
const shardGroupMax = 40

// maxIdentity is the library's limit on holderIdentity.
const maxIdentity = 1024

// flagError turns the flag package's errors into one line with a fix.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return usagef("unknown flag -%s; run elector -h for the list of flags", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return usagef("flag -%s needs a value, e.g. -%s=VALUE", name, name)
	}
	if s, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return usagef("bad flag syntax %q; use --name=value or --name value", s)
	}
	return usagef("%s; run elector -h for the list of flags", msg)
}

// addrErr extracts the reason from net.SplitHostPort's error.
func addrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// lookPathErr explains why exec.LookPath rejected a command.
func lookPathErr(err error) string {
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "not found in $PATH; use an absolute path or install it in the image"
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "not executable (permission denied)"
	default:
		return err.Error()
	}
}
