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
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every series carries the labels namespace and lease.
const (
	metricIsLeader      = "elector_is_leader"
	metricLeaderChanges = "elector_leader_changes_total"
	metricRenewSeconds  = "elector_renew_duration_seconds"
	metricRenewFailures = "elector_renew_failures_total"
	metricLastRenew     = "elector_last_renew_timestamp_seconds"
	metricStopOverruns  = "elector_stop_overruns_total"
	metricDenied        = "elector_permission_denied"
	metricHandoffs      = "elector_handoffs_total"
)

// Values of the role label of elector_handoffs_total.
const (
	handoffFrom = "from" // this candidate handed the Lease on
	handoffTo   = "to"   // this candidate took over a Lease handed to it
)

// metrics are one election's series. A nil *metrics records nothing.
type metrics struct {
	isLeader      prometheus.Gauge
	leaderChanges prometheus.Counter
	renewSeconds  prometheus.Observer
	renewFailures prometheus.Counter
	lastRenew     prometheus.Gauge
	stopOverruns  prometheus.Counter
	denied        prometheus.Gauge
	handoffs      map[string]prometheus.Counter // by role
}

var labels = []string{"namespace", "lease"}

// newMetrics registers the collectors with reg, or reuses those another
// Elector registered there, and returns this election's series.
func newMetrics(reg prometheus.Registerer, namespace, name string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	isLeader, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricIsLeader, Help: "1 while this candidate leads and its leader function runs, else 0.",
	}, labels))
	if err != nil {
		return nil, err
	}
	changes, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricLeaderChanges, Help: "Changes of the Lease holder observed by this candidate.",
	}, labels))
	if err != nil {
		return nil, err
	}
	renew, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricRenewSeconds,
		Help:    "Latency of lease renewal requests, successful or not.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, labels))
	if err != nil {
		return nil, err
	}
	failures, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRenewFailures, Help: "Lease renewal requests that failed.",
	}, labels))
	if err != nil {
		return nil, err
	}
	last, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricLastRenew, Help: "Unix time of the last successful acquisition or renewal by this candidate.",
	}, labels))
	if err != nil {
		return nil, err
	}
	overruns, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricStopOverruns, Help: "Tenures whose leader function had not returned by the renew deadline.",
	}, labels))
	if err != nil {
		return nil, err
	}
	denied, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricDenied, Help: "1 while the API server denies this candidate's requests (403 or 401) and it retries; Err and the logs name the missing permission.",
	}, labels))
	if err != nil {
		return nil, err
	}
	handoffs, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricHandoffs, Help: "Planned handoffs by this candidate: role=\"from\" when it handed the Lease on (or released it for anyone else), role=\"to\" when it took over a Lease handed to it.",
	}, append(labels[:len(labels):len(labels)], "role")))
	if err != nil {
		return nil, err
	}
	return &metrics{
		isLeader:      isLeader.WithLabelValues(namespace, name),
		leaderChanges: changes.WithLabelValues(namespace, name),
		renewSeconds:  renew.WithLabelValues(namespace, name),
		renewFailures: failures.WithLabelValues(namespace, name),
		lastRenew:     last.WithLabelValues(namespace, name),
		stopOverruns:  overruns.WithLabelValues(namespace, name),
		denied:        denied.WithLabelValues(namespace, name),
		handoffs: map[string]prometheus.Counter{
			handoffFrom: handoffs.WithLabelValues(namespace, name, handoffFrom),
			handoffTo:   handoffs.WithLabelValues(namespace, name, handoffTo),
		},
	}, nil
}

// register registers c, or returns the collector of the same description
// that is already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("elector: unable to register metrics: %w", err)
}

func (m *metrics) setLeader(leading bool, lastRenew time.Time) {
	if m == nil {
		return
	}
	if leading {
		m.isLeader.Set(1)
		m.lastRenew.Set(float64(lastRenew.UnixNano()) / 1e9)
		return
	}
	m.isLeader.Set(0)
}

func (m *metrics) leaderChanged() {
	if m != nil {
		m.leaderChanges.Inc()
	}
}

func (m *metrics) renewed(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.renewSeconds.Observe(d.Seconds())
	if err != nil {
		m.renewFailures.Inc()
	}
}

func (m *metrics) setDenied(denied bool) {
	if m == nil {
		return
	}
	if denied {
		m.denied.Set(1)
		return
	}
	m.denied.Set(0)
}

func (m *metrics) stopOverrun() {
	if m != nil {
		m.stopOverruns.Inc()
	}
}

func (m *metrics) handedOff(role string) {
	if m != nil {
		m.handoffs[role].Inc()
	}
}
