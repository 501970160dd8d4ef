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

package ctrl

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of a ShardedManager; every series carries the labels
// lease_namespace (the namespace of the group's Leases) and group, as
// package shard's do.
const (
	// MetricShardSelectorFallback is 1 once a list of a shard's informer
	// came back without ShardInfo: the API server did not apply the shard
	// selector, and this replica filters what it receives. 0 otherwise.
	MetricShardSelectorFallback = "elector_ctrl_shard_selector_fallback"
	// MetricShardFilteredObjects counts the objects outside a shard's
	// range that the API server sent and this replica dropped (0 while
	// the server applies the selector).
	MetricShardFilteredObjects = "elector_ctrl_shard_filtered_objects_total"
)

type shardedMetrics struct {
	fallback prometheus.Gauge
	filtered prometheus.Counter
}

func newShardedMetrics(reg prometheus.Registerer, namespace, group string) (*shardedMetrics, error) {
	l := prometheus.Labels{"lease_namespace": namespace, "group": group}
	fallback, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricShardSelectorFallback,
		Help: "1 once the API server answered a shard's list without ShardInfo (gate ShardedListAndWatch off): this replica filters by shard itself.",
	}, []string{"lease_namespace", "group"}))
	if err != nil {
		return nil, err
	}
	filtered, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricShardFilteredObjects,
		Help: "Objects outside a shard's range that the API server sent and this replica dropped.",
	}, []string{"lease_namespace", "group"}))
	if err != nil {
		return nil, err
	}
	m := &shardedMetrics{fallback: fallback.With(l), filtered: filtered.With(l)}
	m.fallback.Set(0)
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
	return zero, fmt.Errorf("elector ctrl: unable to register metrics: %w", err)
}
