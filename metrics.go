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

// Metric names; every elector_* series carries the labels lease_namespace
// and lease. The Lease's namespace is lease_namespace, not namespace:
// Prometheus Operator (and most Kubernetes scrape configs) attach the
// scraped Pod's namespace as the target label namespace, and a scraped
// label of the same name would be renamed exported_namespace (or, with
// honor_labels, overwrite the Pod's). The Lease may live in another
// namespace than the Pod (--election-namespace), so both are kept.
const (
	metricIsLeader      = "elector_is_leader"
	metricLeaderChanges = "elector_leader_changes_total"
	metricRenewSeconds  = "elector_renew_duration_seconds"
	metricRenewFailures = "elector_renew_failures_total"
	metricLastRenew     = "elector_last_renew_timestamp_seconds"
	metricStopOverruns  = "elector_stop_overruns_total"
	metricDenied        = "elector_permission_denied"
	metricHandoffs      = "elector_handoffs_total"
	metricExpired       = "elector_expired_takeovers_total"

	// Follower-side series, computed from this candidate's view when
	// scraped, so that any replica answers "is there a leader, and until
	// when".
	metricLeaderKnown    = "elector_leader_known"
	metricLeaseExpiry    = "elector_lease_expiry_timestamp_seconds"
	metricHandoffPending = "elector_handoff_pending"

	// metricMasterStatus is the standard series of client-go's leader
	// election (k8s.io/component-base, controller-runtime): 1 while this
	// process leads the election of label name, else 0. Alerts written
	// for those components keep working with elector.
	metricMasterStatus = "leader_election_master_status"
	// masterStatusHelp is controller-runtime's help text, byte for byte:
	// registering the same description makes a Registerer that already
	// has controller-runtime's gauge (its metrics.Registry, which ctrl
	// passes) hand that gauge back instead of failing, so that both
	// libraries set one series.
	masterStatusHelp = "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name."
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
	expired       prometheus.Counter
	// masterStatus is nil when reg holds a leader_election_master_status
	// of another description (see errMasterStatus).
	masterStatus prometheus.Gauge
}

var labels = []string{"lease_namespace", "lease"}

// errMasterStatus wraps the failure to register the standard gauge: New
// logs it and goes on without that series.
var errMasterStatus = errors.New("elector: leader_election_master_status is registered with another description; not exporting it")

// newMetrics registers the collectors with reg, or reuses those another
// Elector registered there, and returns this election's series. An error
// wrapping errMasterStatus comes with usable metrics.
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
	expired, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricExpired, Help: "Tenures this candidate began by taking over a Lease whose holder had stopped renewing it for a lease duration (a crashed, paused, partitioned or overloaded leader), as opposed to a Lease released or handed on: the unplanned leader changes.",
	}, labels))
	if err != nil {
		return nil, err
	}
	m := &metrics{
		expired:       expired.WithLabelValues(namespace, name),
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
	}
	master, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricMasterStatus, Help: masterStatusHelp,
	}, []string{"name"}))
	if err != nil {
		return m, fmt.Errorf("%w: %w", errMasterStatus, err)
	}
	m.masterStatus = master.WithLabelValues(name)
	m.masterStatus.Set(0)
	return m, nil
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
	v := 0.0
	if leading {
		v = 1
		m.lastRenew.Set(float64(lastRenew.UnixNano()) / 1e9)
	}
	m.isLeader.Set(v)
	if m.masterStatus != nil {
		m.masterStatus.Set(v)
	}
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

func (m *metrics) tookOverExpired() {
	if m != nil {
		m.expired.Inc()
	}
}

func (m *metrics) handedOff(role string) {
	if m != nil {
		m.handoffs[role].Inc()
	}
}

// viewCollector exports the follower-side series of one Elector, read
// from its view when scraped. Its descriptions carry the election as
// constant labels, so that several Electors can register one each.
type viewCollector struct {
	e                     *Elector
	known, expiry, handed *prometheus.Desc
}

func newViewCollector(e *Elector) *viewCollector {
	l := prometheus.Labels{"lease_namespace": e.cfg.Namespace, "lease": e.cfg.Name}
	return &viewCollector{
		e: e,
		known: prometheus.NewDesc(metricLeaderKnown,
			"1 while this candidate knows a holder of the Lease whose lease has not expired on its clock (itself or another replica), else 0.", nil, l),
		expiry: prometheus.NewDesc(metricLeaseExpiry,
			"Unix time at which the holder's lease expires as this candidate observes it (its last sight of a renewal plus the lease duration, on its clock); 0 when no holder is known.", nil, l),
		handed: prometheus.NewDesc(metricHandoffPending,
			"1 while a planned handoff has been requested of the holder and is not done, as this candidate sees the Lease, else 0.", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.known
	ch <- c.expiry
	ch <- c.handed
}

// Collect implements prometheus.Collector.
func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	v := c.e.view
	c.e.mu.Unlock()
	now := c.e.clk.Now()
	known, expiry, pending := 0.0, 0.0, 0.0
	if v.Identity != "" && !v.Expiry.IsZero() {
		expiry = float64(v.Expiry.UnixNano()) / 1e9
		if now.Before(v.Expiry) {
			known = 1
		}
	}
	if v.Handoff != nil {
		pending = 1
	}
	ch <- prometheus.MustNewConstMetric(c.known, prometheus.GaugeValue, known)
	ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, expiry)
	ch <- prometheus.MustNewConstMetric(c.handed, prometheus.GaugeValue, pending)
}
