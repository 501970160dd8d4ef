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

package shard

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
)

// MaxShards bounds K: the table of 1024 shards is about 80 KiB of JSON,
// well inside the 256 KiB the API server allows for a Lease's annotations.
const MaxShards = 1024

// assignmentAttempts bounds the writes of one change of the table when
// other replicas write it at the same time (each attempt reads it again).
const assignmentAttempts = 5

// Config configures a group's replica. Leases, Namespace, Group, Identity
// and Shards are required; the timings mean what they mean for
// elector.Config and default alike.
type Config struct {
	// Leases reaches the Leases of Namespace (see elector.LeaseClient).
	Leases elector.LeaseClient
	// Namespace is the namespace Leases is bound to.
	Namespace string
	// Group names the sharded workload: a DNS-1123 label of at most 40
	// characters (the Lease names add suffixes). Every replica of the
	// group uses the same Group and Shards.
	Group string
	// Identity names this replica; unique among the replicas (the Pod
	// name).
	Identity string
	// Shards is K, the number of shards, numbered 0 to K-1 (1 to
	// MaxShards). It cannot change while the group's assignment Lease
	// exists.
	Shards int

	// LeaseDuration, RenewDeadline, RetryPeriod, StopGrace and APITimeout
	// apply to the member Lease of this replica, which bounds every shard
	// it owns, and to the coordinator election. Zero means elector's
	// default.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	StopGrace     time.Duration
	APITimeout    time.Duration

	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus collectors; nil means none.
	Registerer prometheus.Registerer
}

// maxGroupLength leaves room for "-coordinator" and "-m-<16 hex>" in a
// Lease name and keeps the label value valid.
const maxGroupLength = 40

// ConfigError reports an invalid Config field.
type ConfigError = elector.ConfigError

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// withTimings fills in elector's defaults, so that this package uses the
// same values as the electors it starts.
func (c Config) withTimings() Config {
	c = c.withDefaults()
	if c.LeaseDuration == 0 {
		c.LeaseDuration = elector.DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = elector.DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = elector.DefaultRetryPeriod
	}
	if c.StopGrace == 0 {
		c.StopGrace = min(elector.DefaultStopGrace, (c.RenewDeadline-c.RetryPeriod)/2)
	}
	if c.APITimeout == 0 {
		c.APITimeout = min(max(c.RenewDeadline/4, time.Second), c.RenewDeadline/2)
	}
	return c
}

// memberConfig is the elector configuration of this replica's member
// Lease; coordinatorConfig that of its candidacy as coordinator.
func (c Config) electorConfig(name, role string, w *elector.SharedWatch) elector.Config {
	return elector.Config{
		Leases:        c.Leases,
		Namespace:     c.Namespace,
		Name:          name,
		Identity:      c.Identity,
		Labels:        map[string]string{LabelGroup: c.Group, LabelRole: role},
		LeaseDuration: c.LeaseDuration,
		RenewDeadline: c.RenewDeadline,
		RetryPeriod:   c.RetryPeriod,
		StopGrace:     c.StopGrace,
		APITimeout:    c.APITimeout,
		Watch:         w,
		Clock:         c.Clock,
		Logger:        c.Logger,
		Registerer:    c.Registerer,
	}
}

// Validate applies the defaults and checks every rule; it returns the
// first *ConfigError found.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Shards < 1 || c.Shards > MaxShards:
		return &ConfigError{Field: "Shards", Value: c.Shards, Rule: fmt.Sprintf("must be between 1 and %d", MaxShards)}
	case len(c.Group) > maxGroupLength:
		return &ConfigError{Field: "Group", Value: fmt.Sprintf("%q", c.Group), Rule: fmt.Sprintf("must be at most %d characters", maxGroupLength)}
	}
	if errs := validation.IsDNS1123Label(c.Group); len(errs) > 0 {
		return &ConfigError{Field: "Group", Value: fmt.Sprintf("%q", c.Group), Rule: "must be a DNS-1123 label: " + errs[0]}
	}
	return c.electorConfig(MemberName(c.Group, c.Identity), RoleMember, nil).Validate()
}
