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

// Command leaderelector05 is a stand-in for the retired
// k8s.gcr.io/leader-elector:0.5 image, for tests of a rollout from that
// image to elector. The image cannot be pulled any more; this command
// reproduces what it did on the API server and on its --http port:
//
//   - the lock is an Endpoints object, --election in --election-namespace
//     (default "default"), whose annotation
//     control-plane.alpha.kubernetes.io/leader holds the JSON record
//     holderIdentity, leaseDurationSeconds, acquireTime, renewTime,
//     leaderTransitions; it is written by client-go's leaderelection with
//     its EndpointsLock, from client-go v0.23.16: v0.24 stopped accepting
//     the "endpoints" lock type and later releases dropped the lock, and
//     v0.23 cannot share a go.mod with the v0.37 of the library and the
//     test module, hence this module of its own;
//   - timings: lease duration = --ttl (default 10s), renew deadline = ttl/2,
//     retry period = ttl/4, jitter 1.2; the lock is never released;
//   - where 0.5's older copy of that code differs, it behaves as 0.5 (see
//     lock05): an empty holder counts as a live holder until a lease
//     duration has passed, and renewals write leaderTransitions 0;
//   - it reads (and if missing creates) the Endpoints object before it
//     campaigns, and campaigns again after losing leadership, forever; it
//     needs get, create and update on endpoints, and writes no Events;
//   - GET (any method, any path) on --http answers 200 {"name":"<leader>"},
//     without a Content-Type of its own (Go sniffs text/plain), where the
//     leader is the holder this replica last observed;
//   - SIGTERM and SIGINT are ignored: the image ran bash as PID 1 without a
//     handler, so only SIGKILL ended it;
//   - on stdout it prints "<leader> is the leader" at every change, as 0.5
//     did; client-go logs with klog on stderr.
//
// It differs from 0.5 where 0.5 was merely broken: two replicas creating
// the Endpoints object at once both go on (0.5 exited on AlreadyExists and
// relied on a restart), the leader's name is not a data race, and --id
// defaults to the hostname (0.5 required it; its run.sh passed the
// hostname).
//
// For the tests it also logs its events on stderr with log/slog, with
// fixed messages (the Msg* constants), and takes --kubeconfig and
// --lead-file. With --lead-file=PATH it holds an exclusive flock on PATH
// while it believes it leads (from OnStartedLeading until
// OnStoppedLeading), taken without waiting, the same lock that the chaos
// actor (test/chaos/cmd/actor, $CHAOS_LOCK) holds while elector runs it:
// one detector for both. If another process holds it, two leaders act at
// once; it logs "OVERLAP: ..." at level ERROR, goes on leading as 0.5
// would, and takes the lock as soon as it is free. The kernel releases the
// lock when the process dies, however it dies.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// The messages of the events logged on stderr (msg=...), for the tests.
const (
	MsgStarting       = "Starting"           // the configuration, once
	MsgServing        = "Serving HTTP"       // addr=host:port
	MsgCurrentLeader  = "Current leader"     // read at start, as 0.5 did: leader=
	MsgCampaigning    = "Campaigning"        // each run of the elector: campaign=N
	MsgObservedLeader = "Observed leader"    // OnNewLeader: leader=
	MsgStarted        = "Started leading"    // OnStartedLeading: id=
	MsgStopped        = "Stopped leading"    // OnStoppedLeading after leading: id=
	MsgIgnoredSignal  = "Ignored signal"     // SIGTERM or SIGINT: signal=
	MsgLocked         = "Locked lead file"   // path=
	MsgUnlocked       = "Unlocked lead file" // path=
	MsgFatal          = "Fatal"              // err=, then exit 255 as glog.Fatal did
	// MsgOverlap starts the message logged when the lead file is locked by
	// another process when this replica starts leading.
	MsgOverlap = "OVERLAP: the lead file is locked by another leader"
)

// exitFatal is the exit code of glog.Fatal, which 0.5 used for every
// failure.
const exitFatal = 255

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config holds the flags.
type config struct {
	election   string
	namespace  string
	id         string
	ttl        time.Duration
	inCluster  bool
	httpAddr   string
	kubeconfig string
	leadFile   string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	hostname, _ := os.Hostname()
	fs := flag.NewFlagSet("leaderelector05", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.election, "election", "", "The name of the election (an Endpoints object)")
	fs.StringVar(&c.namespace, "election-namespace", metav1.NamespaceDefault, "The Kubernetes namespace for this election")
	fs.StringVar(&c.id, "id", hostname, "The id of this participant")
	fs.DurationVar(&c.ttl, "ttl", 10*time.Second, "The TTL for this election")
	fs.BoolVar(&c.inCluster, "use-cluster-credentials", false, "Should this request use cluster credentials?")
	fs.StringVar(&c.httpAddr, "http", "", "If non-empty, stand up a simple webserver that reports the leader state")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to a kubeconfig file (tests)")
	fs.StringVar(&c.leadFile, "lead-file", "", "Hold an exclusive flock on this file while leading; log OVERLAP if another process holds it (tests)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.id == "" {
		return c, errors.New("--id cannot be empty")
	}
	if c.election == "" {
		return c, errors.New("--election cannot be empty")
	}
	if _, _, retry := timings(c.ttl); retry <= 0 {
		return c, fmt.Errorf("--ttl=%v is too short", c.ttl)
	}
	return c, nil
}

// timings are 0.5's: lease duration, renew deadline and retry period from
// the ttl.
func timings(ttl time.Duration) (lease, renew, retry time.Duration) {
	return ttl, ttl / 2, ttl / 4
}

func run(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		log.Error(MsgFatal, "err", err.Error())
		return exitFatal
	}
	// The deprecation warning of v1 Endpoints comes with every request:
	// print it once.
	rest.SetDefaultWarningHandler(rest.NewWarningWriter(stderr, rest.WarningWriterOptions{Deduplicate: true}))

	// SIGTERM ends nothing: the image's PID 1 was bash without a handler.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range signals {
			log.Info(MsgIgnoredSignal, "signal", sig.String())
		}
	}()

	var lf *leadFile
	if c.leadFile != "" {
		if lf, err = openLeadFile(c.leadFile, log); err != nil {
			log.Error(MsgFatal, "err", err.Error())
			return exitFatal
		}
	}

	cfg, err := restConfig(c)
	if err != nil {
		log.Error(MsgFatal, "err", fmt.Sprintf("error connecting to the client: %v", err))
		return exitFatal
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Error(MsgFatal, "err", fmt.Sprintf("error connecting to the client: %v", err))
		return exitFatal
	}
	lease, renew, retry := timings(c.ttl)
	log.Info(MsgStarting, "id", c.id, "election", c.namespace+"/"+c.election,
		"leaseDuration", lease, "renewDeadline", renew, "retryPeriod", retry, "leadFile", c.leadFile)

	// As 0.5, in its order: read (or create) the lock object and report
	// its holder, then serve HTTP, then campaign.
	ctx := context.Background() // never cancelled: nothing stops 0.5 but SIGKILL
	holder, err := prepare(ctx, client, c.namespace, c.election)
	if err != nil {
		log.Error(MsgFatal, "err", fmt.Sprintf("failed to create election: %v", err))
		return exitFatal
	}
	log.Info(MsgCurrentLeader, "leader", holder)
	s := &state{out: stdout}
	s.setLeader(holder)

	if c.httpAddr != "" {
		ln, err := net.Listen("tcp", c.httpAddr)
		if err != nil {
			log.Error(MsgFatal, "err", err.Error())
			return exitFatal
		}
		log.Info(MsgServing, "addr", ln.Addr().String())
		go func() {
			err := http.Serve(ln, http.HandlerFunc(s.serveHTTP))
			log.Error(MsgFatal, "err", err.Error())
			os.Exit(exitFatal)
		}()
	}

	lock := &lock05{EndpointsLock: &resourcelock.EndpointsLock{
		EndpointsMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: c.election},
		Client:        client.CoreV1(),
		// No EventRecorder: 0.5's Events never reached the API server.
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.id},
	}}
	var (
		mu      sync.Mutex
		leading bool
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: lease,
		RenewDeadline: renew,
		RetryPeriod:   retry,
		Callbacks: leaderelection.LeaderCallbacks{
			// Called in a goroutine, which may run after the tenure ended
			// (ctx is then done, and OnStoppedLeading has run or runs).
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				defer mu.Unlock()
				if ctx.Err() != nil || leading {
					return
				}
				leading = true
				log.Info(MsgStarted, "id", c.id)
				if lf != nil {
					lf.lead(c.id)
				}
				s.setLeader(c.id)
			},
			// Called whenever Run returns, which here is only after a
			// tenure: ctx is never cancelled.
			OnStoppedLeading: func() {
				mu.Lock()
				wasLeading := leading
				leading = false
				if wasLeading {
					if lf != nil {
						lf.stop()
					}
					log.Info(MsgStopped, "id", c.id)
				}
				mu.Unlock()
				// As 0.5: ask the API server who leads now.
				holder, err := currentLeader(ctx, client, c.namespace, c.election)
				if err != nil {
					log.Error("Unable to read the leader", "err", err.Error())
					holder = "" // unknown
				}
				s.setLeader(holder)
			},
			OnNewLeader: func(identity string) {
				identity = holderName(identity)
				log.Info(MsgObservedLeader, "leader", identity)
				s.setLeader(identity)
			},
		},
	})
	if err != nil {
		log.Error(MsgFatal, "err", fmt.Sprintf("failed to create election: %v", err))
		return exitFatal
	}
	// 0.5 ran wait.Forever(e.Run, 0): campaign again after every loss.
	for campaign := 1; ; campaign++ {
		log.Info(MsgCampaigning, "campaign", campaign)
		le.Run(ctx)
	}
}

func restConfig(c config) (*rest.Config, error) {
	if c.inCluster {
		return rest.InClusterConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// prepare reads the Endpoints object, creating it when it does not exist,
// and returns its holder, as 0.5 did before it campaigned.
func prepare(ctx context.Context, client kubernetes.Interface, namespace, name string) (string, error) {
	_, err := client.CoreV1().Endpoints(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.CoreV1().Endpoints(namespace).Create(ctx, &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return "", err
	}
	return currentLeader(ctx, client, namespace, name)
}

// currentLeader returns the holder in the annotation of the Endpoints
// object, "" when there is none.
func currentLeader(ctx context.Context, client kubernetes.Interface, namespace, name string) (string, error) {
	e, err := client.CoreV1().Endpoints(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	val, ok := e.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]
	if !ok {
		return "", nil
	}
	var rec resourcelock.LeaderElectionRecord
	if err := json.Unmarshal([]byte(val), &rec); err != nil {
		return "", err
	}
	return rec.HolderIdentity, nil
}

// state is the leader reported on --http.
type state struct {
	out    io.Writer // "<leader> is the leader" lines
	mu     sync.Mutex
	leader string
}

func (s *state) setLeader(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leader = name
	fmt.Fprintf(s.out, "%s is the leader\n", name)
}

// serveHTTP answers every request as 0.5 did: 200 {"name":"<leader>"}.
func (s *state) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	data, err := json.Marshal(struct {
		Name string `json:"name"`
	}{s.leader})
	s.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(err.Error()))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
