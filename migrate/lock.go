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

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/outage"
)

// Annotation is the key of the old lock's record, on an Endpoints or a
// ConfigMap object.
const Annotation = "control-plane.alpha.kubernetes.io/leader"

// Kind is the kind of object that carries the old lock.
type Kind string

const (
	// Endpoints is the lock of k8s.gcr.io/leader-elector:0.5, and
	// client-go's "endpoints" resource lock (removed in client-go v0.24).
	Endpoints Kind = "endpoints"
	// ConfigMaps is client-go's "configmaps" resource lock (removed in
	// client-go v0.24).
	ConfigMaps Kind = "configmaps"
)

// minRenewInterval keeps two renewals at least a second apart: the old
// record stores times in whole seconds, and old candidates see a holder
// as alive only while its record changes.
const minRenewInterval = time.Second

// Lock is an old annotation lock that Guard takes inside an elector
// tenure. Client, Kind, Namespace, Name and Identity are required;
// timings default to elector's defaults and must be the Elector's.
type Lock struct {
	// Client reaches the lock's object, e.g.
	// migrate.REST(clientset.CoreV1().RESTClient()).
	Client    Objects
	Kind      Kind
	Namespace string // where the old candidates keep it (0.5's default: "default")
	Name      string
	Identity  string

	LeaseDuration time.Duration // written into the record; default elector.DefaultLeaseDuration
	RenewDeadline time.Duration // default elector.DefaultRenewDeadline
	RetryPeriod   time.Duration // polls and renewals; default elector.DefaultRetryPeriod
	StopGrace     time.Duration // default elector.DefaultStopGrace
	APITimeout    time.Duration // default RenewDeadline/4

	Clock  clock.WithTicker // default the real clock
	Logger *slog.Logger     // default slog.Default()

	mu        sync.Mutex
	holder    string    // last holder seen in the old lock
	deadline  time.Time // while work runs: last successful write + RenewDeadline
	acting    bool
	validated bool
	warnedTTL bool
	// outage logs an outage of the API server once when the old lock's
	// requests start failing and once when one is answered again.
	outage *outage.Tracker
	// releasing is closed when the last release started by Guard has
	// ended; nil before the first.
	releasing chan struct{}
}

// record is the old lock's record, as client-go's LeaderElectionRecord
// encodes it in the annotation.
type record struct {
	HolderIdentity       string      `json:"holderIdentity"`
	LeaseDurationSeconds int         `json:"leaseDurationSeconds"`
	AcquireTime          metav1.Time `json:"acquireTime"`
	RenewTime            metav1.Time `json:"renewTime"`
	LeaderTransitions    int         `json:"leaderTransitions"`
}

// ErrLockLost means the old lock was taken by another holder, or could
// not be renewed before the stop point, while the work ran.
var ErrLockLost = errors.New("migrate: old lock lost")

// Validate applies the defaults and checks the Lock.
func (l *Lock) Validate() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validateLocked()
}

func (l *Lock) validateLocked() error {
	if l.validated {
		return nil
	}
	switch {
	case l.Client == nil:
		return errors.New("migrate: invalid Lock: Client must be set")
	case l.Kind != Endpoints && l.Kind != ConfigMaps:
		return fmt.Errorf("migrate: invalid Lock: Kind %q must be %q or %q", l.Kind, Endpoints, ConfigMaps)
	case l.Namespace == "" || l.Name == "" || l.Identity == "":
		return errors.New("migrate: invalid Lock: Namespace, Name and Identity must be set")
	}
	if l.LeaseDuration == 0 {
		l.LeaseDuration = elector.DefaultLeaseDuration
	}
	if l.RenewDeadline == 0 {
		l.RenewDeadline = elector.DefaultRenewDeadline
	}
	if l.RetryPeriod == 0 {
		l.RetryPeriod = elector.DefaultRetryPeriod
	}
	if l.StopGrace == 0 {
		l.StopGrace = min(elector.DefaultStopGrace, (l.RenewDeadline-l.RetryPeriod)/2)
	}
	if l.APITimeout == 0 {
		l.APITimeout = max(l.RenewDeadline/4, 500*time.Millisecond)
	}
	if l.Clock == nil {
		l.Clock = clock.RealClock{}
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.RenewDeadline >= l.LeaseDuration || l.StopGrace >= l.RenewDeadline {
		return fmt.Errorf("migrate: invalid Lock: need LeaseDuration (%v) > RenewDeadline (%v) > StopGrace (%v)", l.LeaseDuration, l.RenewDeadline, l.StopGrace)
	}
	l.Logger = l.Logger.With("oldLock", string(l.Kind)+"/"+l.Namespace+"/"+l.Name)
	l.outage = outage.New(l.Logger, l.Clock)
	l.validated = true
	return nil
}

// Holder is the holder of the old lock as last seen by this candidate:
// while old candidates run, the one that acts. "" when free or unknown.
func (l *Lock) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

// Deadline returns, while the guarded work runs, by when it must have
// stopped unless the old lock is renewed first. A watchdog combines it
// with the Elector's Deadline.
func (l *Lock) Deadline() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline, l.acting
}

func (l *Lock) setHolder(h string) {
	l.mu.Lock()
	l.holder = h
	l.mu.Unlock()
}

func (l *Lock) setDeadline(d time.Time, acting bool) {
	l.mu.Lock()
	l.deadline, l.acting = d, acting
	l.mu.Unlock()
}

// object is the metadata of the Endpoints or ConfigMap that carries the
// lock.
type object struct {
	meta metav1.ObjectMeta
}

func (l *Lock) get(ctx context.Context) (*object, error) {
	ctx, cancel := context.WithTimeout(ctx, l.APITimeout)
	defer cancel()
	m, err := l.Client.Get(ctx, l.Kind, l.Namespace, l.Name)
	l.outage.Observe(ctx, "get "+string(l.Kind)+"/"+l.Name, err)
	if err != nil {
		return nil, err
	}
	return &object{meta: *m}, nil
}

// write stores rec in o (nil: create the object). The update carries o's
// resourceVersion, so a concurrent writer makes it fail with a conflict.
func (l *Lock) write(ctx context.Context, o *object, rec record) (*object, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.APITimeout)
	defer cancel()
	var got *metav1.ObjectMeta
	verb := "update "
	if o == nil {
		verb = "create "
		got, err = l.Client.Create(ctx, l.Kind, &metav1.ObjectMeta{
			Name: l.Name, Namespace: l.Namespace, Annotations: map[string]string{Annotation: string(data)},
		})
	} else {
		got, err = l.Client.SetAnnotation(ctx, l.Kind, &o.meta, Annotation, string(data))
	}
	l.outage.Observe(ctx, verb+string(l.Kind)+"/"+l.Name, err)
	if err != nil {
		return nil, err
	}
	return &object{meta: *got}, nil
}

// retrying logs a failed request to the old lock that is retried: at debug
// level when it is part of an outage of the API server (logged once when
// it starts and once when it ends, see package outage), else at info
// level.
func (l *Lock) retrying(msg string, err error) {
	l.Logger.Log(context.Background(), outage.Level(err), msg, "error", err) //nolint:sloglint // callers pass a fixed message
}

// recordOf parses the record; a missing or unparsable annotation is a
// free lock, as old candidates treat it.
func recordOf(o *object) (record, bool) {
	var r record
	s, ok := o.meta.Annotations[Annotation]
	if !ok || json.Unmarshal([]byte(s), &r) != nil {
		return record{}, false
	}
	return r, true
}

func sameRecord(a, b record) bool {
	return a.HolderIdentity == b.HolderIdentity && a.LeaseDurationSeconds == b.LeaseDurationSeconds &&
		a.AcquireTime.Equal(&b.AcquireTime) && a.RenewTime.Equal(&b.RenewTime) && a.LeaderTransitions == b.LeaderTransitions
}

func jitter(d time.Duration) time.Duration { return d + time.Duration(rand.Int64N(int64(d)/5+1)) }

// now is the clock's time in the old record's precision (seconds).
func (l *Lock) now() metav1.Time { return metav1.NewTime(l.Clock.Now().Truncate(time.Second)) }

// Observe polls the old lock every RetryPeriod until ctx ends, so that
// Holder names the acting leader on every replica while old candidates
// run (they, not the Lease, decide who acts among themselves). It needs
// only get on the object.
func (l *Lock) Observe(ctx context.Context) {
	if l.Validate() != nil {
		return
	}
	for {
		o, err := l.get(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			r, _ := recordOf(o)
			l.setHolder(r.HolderIdentity)
		}
		t := l.Clock.NewTimer(jitter(l.RetryPeriod))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}
