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
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every series carries the labels lease_namespace (the
// namespace of the group's Leases; not namespace, which Prometheus
// Operator sets to the scraped Pod's, see package elector) and group.
const (
	metricOwned       = "elector_shards_owned"
	metricShards      = "elector_shards"
	metricMoves       = "elector_shard_moves_total"
	metricTableWrites = "elector_shard_table_writes_total"
	metricFences      = "elector_shard_member_fences_total"
)

// Kinds of elector_shard_moves_total, counted by the replica that wrote
// the change.
const (
	moveAssigned  = "assigned"   // an unowned or orphaned shard given to a member (coordinator)
	moveRequested = "requested"  // a handoff asked of a live owner (coordinator)
	moveHandedOff = "handed_off" // an owner handed a shard on after its work stopped
	moveReleased  = "released"   // a leaving replica released a shard: no other member was live
)

type metrics struct {
	owned  prometheus.Gauge
	shards prometheus.Gauge
	moves  *prometheus.CounterVec
	writes *prometheus.CounterVec
	fences prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, namespace, group string, k int) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	l := prometheus.Labels{"lease_namespace": namespace, "group": group}
	owned, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricOwned, Help: "Shards whose function runs in this replica.",
	}, []string{"lease_namespace", "group"}))
	if err != nil {
		return nil, err
	}
	shards, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricShards, Help: "Shards of the group (K, as configured): sum(elector_shards_owned) below it means shards without a running owner.",
	}, []string{"lease_namespace", "group"}))
	if err != nil {
		return nil, err
	}
	moves, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricMoves, Help: "Changes of the shard assignment written by this replica, by kind.",
	}, []string{"lease_namespace", "group", "kind"}))
	if err != nil {
		return nil, err
	}
	writes, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricTableWrites, Help: "Writes of the assignment Lease by this replica, by result (ok, conflict, error).",
	}, []string{"lease_namespace", "group", "result"}))
	if err != nil {
		return nil, err
	}
	fences, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricFences, Help: "Member Leases this replica fenced (as coordinator) after they expired.",
	}, []string{"lease_namespace", "group"}))
	if err != nil {
		return nil, err
	}
	m := &metrics{
		owned:  owned.With(l),
		shards: shards.With(l),
		moves:  moves.MustCurryWith(l),
		writes: writes.MustCurryWith(l),
		fences: fences.With(l),
	}
	m.shards.Set(float64(k))
	return m, nil
}

// register registers c, or returns the collector of that name already
// registered (several groups may share a Registerer).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) setOwned(n int) {
	if m != nil {
		m.owned.Set(float64(n))
	}
}

func (m *metrics) moved(kind string, n int) {
	if m != nil && n > 0 {
		m.moves.WithLabelValues(kind).Add(float64(n))
	}
}

func (m *metrics) wrote(result string) {
	if m != nil {
		m.writes.WithLabelValues(result).Inc()
	}
}

func (m *metrics) fenced() {
	if m != nil {
		m.fences.Inc()
	}
}
