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

package elector

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"
)

// Defaults. They match the values most client-go users run with (15s/10s/2s),
// so that elector and client-go candidates on one Lease behave alike.
const (
	// DefaultLeaseDuration is how long a follower waits, on its own clock,
	// after it last saw the Lease record change before it may take over a
	// silent leader. It bounds takeover time after a crash.
	DefaultLeaseDuration = 15 * time.Second
	// DefaultRenewDeadline is how long after its last successful renewal a
	// leader keeps acting. The 5s gap to the lease duration is the margin
	// that absorbs clock-rate differences and the stop of guarded work.
	DefaultRenewDeadline = 10 * time.Second
	// DefaultRetryPeriod is the interval between renewals by the leader and
	// between retries after transient errors.
	DefaultRetryPeriod = 2 * time.Second
	// DefaultStopGrace is the time the leader function gets to return after
	// its context is cancelled because renewals failed. Leadership work
	// should stop well inside it.
	DefaultStopGrace = 2 * time.Second

	// retryFactor is client-go's rule: RenewDeadline > retryFactor × RetryPeriod,
	// so that at least one retry fits inside the renew deadline.
	retryFactor = 1.2
	// minAPITimeout keeps request timeouts sane on short leases; on very
	// short ones (RenewDeadline ≤ 2s) the default is RenewDeadline/2
	// instead, so that a request never outlives the renew deadline.
	minAPITimeout = time.Second

	// DefaultForbiddenTimeout is how long a candidate that has never had a
	// request accepted keeps retrying requests the API server denies (403,
	// 401) before Run gives up. A kube-apiserver that has just started
	// denies requests for a few seconds while its authorization caches
	// fill; a permission that is really missing is still reported well
	// within 20 seconds.
	DefaultForbiddenTimeout = 15 * time.Second
)

// Config configures an [Elector]. Only Leases, Namespace, Name and Identity
// are required; everything else has a documented default. Validate checks it
// in one place.
type Config struct {
	// Leases reaches the Leases of Namespace, e.g.
	// clientset.CoordinationV1().Leases("team-a"); see [LeaseClient].
	Leases LeaseClient

	// Namespace and Name identify the Lease. Both must be DNS-1123 names.
	// Namespace must be the namespace Leases is bound to; elector uses it
	// in logs, metrics and the Role it prints when a permission is missing.
	Namespace string
	Name      string

	// Identity names this candidate in the Lease's holderIdentity. It must
	// be unique among the candidates, e.g. the Pod name.
	Identity string

	// Labels are set on the Lease when this candidate creates, acquires
	// or renews it (other labels are kept), so that a watch with a label
	// selector (SharedWatchOptions.LabelSelector) sees it. Optional.
	Labels map[string]string

	// LeaseDuration, RenewDeadline and RetryPeriod follow client-go's
	// meaning and rule: LeaseDuration > RenewDeadline > 1.2 × RetryPeriod.
	// Zero means the default.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration

	// StopGrace is how long before the renew deadline the leader function's
	// context is cancelled when renewals keep failing, i.e. the time the
	// function has to return. It must be below RenewDeadline - RetryPeriod.
	// Zero means DefaultStopGrace, capped to fit.
	StopGrace time.Duration

	// APITimeout bounds every API request. Zero means
	// max(RenewDeadline/4, 1s), but at most RenewDeadline/2, which keeps a
	// stuck request well inside the renew deadline.
	APITimeout time.Duration

	// ForbiddenTimeout is how long Run retries requests that the API
	// server denies (403 Forbidden, 401 Unauthorized) while no request of
	// this Elector has ever been accepted; then Run returns a
	// *ForbiddenError. Once any request has been accepted, denials are
	// treated as transient (an API server restarting, a Role being
	// replaced) and retried for as long as Run runs: Err reports them.
	// Zero means DefaultForbiddenTimeout.
	ForbiddenTimeout time.Duration

	// KeepLease disables release on cancel: by default the Lease is
	// released (empty holder) after the leader function has returned, so
	// that a follower takes over at once.
	KeepLease bool

	// Watch, when set, is a shared namespace watch that this elector uses
	// instead of opening its own watch on its Lease. Use one for many
	// elections in one process and namespace.
	Watch *SharedWatch

	// Events, when set, receives this candidate's BecameLeader,
	// StoppedLeading and HandedOff moments (see EventRecorder), e.g. to
	// write them as Kubernetes Events on the Lease as the sidecar does.
	Events EventRecorder

	// Version is the version written into the holder marker
	// (AnnotationHolder) with which tools tell an elector holder from
	// others. Empty means this module's version from the build info.
	Version string

	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus collectors; nil means none are
	// registered. Several electors may share one Registerer.
	Registerer prometheus.Registerer
}

// ConfigError reports an invalid Config field: its name, its value and
// the rule it breaks.
type ConfigError struct {
	Field string
	Value any
	Rule  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("elector: invalid %s %v: %s", e.Field, e.Value, e.Rule)
}

// withDefaults returns a copy of c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	if c.StopGrace == 0 {
		c.StopGrace = min(DefaultStopGrace, (c.RenewDeadline-c.RetryPeriod)/2)
	}
	if c.APITimeout == 0 {
		c.APITimeout = min(max(c.RenewDeadline/4, minAPITimeout), c.RenewDeadline/2)
	}
	if c.ForbiddenTimeout == 0 {
		c.ForbiddenTimeout = DefaultForbiddenTimeout
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate applies the defaults and checks every rule. It returns the
// first *ConfigError found.
func (c Config) Validate() error {
	_, err := c.validated()
	return err
}

func (c Config) validated() (Config, error) {
	c = c.withDefaults()
	switch {
	case c.Leases == nil:
		return c, &ConfigError{"Leases", nil, "must be set (e.g. clientset.CoordinationV1().Leases(namespace))"}
	case c.Identity == "":
		return c, &ConfigError{"Identity", `""`, "must be non-empty and unique per candidate (e.g. the Pod name)"}
	case len(c.Identity) > maxIdentityLength:
		return c, &ConfigError{"Identity", fmt.Sprintf("of %d bytes", len(c.Identity)), fmt.Sprintf("must be at most %d bytes", maxIdentityLength)}
	case c.LeaseDuration <= c.RenewDeadline:
		return c, &ConfigError{"LeaseDuration", c.LeaseDuration, fmt.Sprintf("must be greater than RenewDeadline (%v)", c.RenewDeadline)}
	case float64(c.RenewDeadline) <= retryFactor*float64(c.RetryPeriod):
		return c, &ConfigError{"RenewDeadline", c.RenewDeadline, fmt.Sprintf("must be greater than 1.2 × RetryPeriod (%v)", c.RetryPeriod)}
	case c.RetryPeriod <= 0:
		return c, &ConfigError{"RetryPeriod", c.RetryPeriod, "must be positive"}
	case c.LeaseDuration%time.Second != 0:
		return c, &ConfigError{"LeaseDuration", c.LeaseDuration, "must be a whole number of seconds (the Lease stores seconds)"}
	case c.StopGrace < 0 || c.StopGrace >= c.RenewDeadline-c.RetryPeriod:
		return c, &ConfigError{"StopGrace", c.StopGrace, fmt.Sprintf("must be between 0 and RenewDeadline - RetryPeriod (%v)", c.RenewDeadline-c.RetryPeriod)}
	case c.APITimeout <= 0 || c.APITimeout >= c.RenewDeadline:
		return c, &ConfigError{"APITimeout", c.APITimeout, fmt.Sprintf("must be positive and below RenewDeadline (%v)", c.RenewDeadline)}
	case c.ForbiddenTimeout < 0:
		return c, &ConfigError{"ForbiddenTimeout", c.ForbiddenTimeout, "must not be negative"}
	}
	if errs := validation.IsDNS1123Subdomain(c.Name); len(errs) > 0 {
		return c, &ConfigError{"Name", fmt.Sprintf("%q", c.Name), "must be a DNS-1123 subdomain: " + errs[0]}
	}
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return c, &ConfigError{"Namespace", fmt.Sprintf("%q", c.Namespace), "must be a DNS-1123 label: " + errs[0]}
	}
	for k, v := range c.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return c, &ConfigError{"Labels", fmt.Sprintf("key %q", k), "must be a qualified name: " + errs[0]}
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return c, &ConfigError{"Labels", fmt.Sprintf("value %q of %q", v, k), "must be a valid label value: " + errs[0]}
		}
	}
	if c.Watch != nil && c.Watch.namespace != c.Namespace {
		return c, &ConfigError{"Watch", c.Watch.namespace, fmt.Sprintf("must watch the Lease's namespace %q", c.Namespace)}
	}
	return c, nil
}

// maxIdentityLength keeps holderIdentity well inside object size limits
// while allowing any Pod name (253) plus a suffix.
const maxIdentityLength = 1024
