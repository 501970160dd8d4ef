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
	"context"
	"fmt"
	"math/bits"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/sharding"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/shard"
)

// ShardKey is the field of an object whose 64-bit FNV-1a hash places it
// in a Range: one of the field paths that the API server's shardSelector
// accepts (KEP-5866).
type ShardKey string

// The keys the API server supports.
const (
	// ShardByUID spreads objects evenly, one by one: every object,
	// namespaced or cluster-scoped, has a UID, and it never changes.
	ShardByUID ShardKey = "object.metadata.uid"
	// ShardByNamespace keeps all the objects of a namespace in one range,
	// so that a controller sees an object and the objects it owns or
	// reads in the same namespace together. Cluster-scoped objects have
	// the empty namespace: they all fall in one range.
	ShardByNamespace ShardKey = "object.metadata.namespace"
)

// endOfHashSpace is the exclusive upper bound of the last range, 2^64, as
// the API server spells it.
const endOfHashSpace = "0x10000000000000000"

// Range is one shard's part of the 64-bit hash space: shard Index of
// Shards (K) owns the objects whose hash of Key lies in [Start, End).
// The K ranges of a group are equal in size (to one hash value), cover
// the space without gaps or overlaps, and are numbered in hash order.
type Range struct {
	// Index is the shard's number, 0 to Shards-1.
	Index int
	// Shards is K, the number of shards of the group.
	Shards int
	// Key is the hashed field.
	Key ShardKey
	// Start is the inclusive lower bound, 0x and 16 lowercase hex digits.
	Start string
	// End is the exclusive upper bound, 0x and 16 lowercase hex digits,
	// or 0x10000000000000000 (2^64) for the last range.
	End string
}

// NewRange returns shard index's range of k equal ranges of the hash of
// key: [floor(index·2^64/k), floor((index+1)·2^64/k)).
func NewRange(key ShardKey, index, k int) (Range, error) {
	switch {
	case key != ShardByUID && key != ShardByNamespace:
		return Range{}, &elector.ConfigError{Field: "Key", Value: fmt.Sprintf("%q", key), Rule: fmt.Sprintf("must be %q or %q", ShardByUID, ShardByNamespace)}
	case k < 1 || k > shard.MaxShards:
		return Range{}, &elector.ConfigError{Field: "Shards", Value: k, Rule: fmt.Sprintf("must be between 1 and %d", shard.MaxShards)}
	case index < 0 || index >= k:
		return Range{}, &elector.ConfigError{Field: "Index", Value: index, Rule: fmt.Sprintf("must be between 0 and %d", k-1)}
	}
	end := endOfHashSpace
	if index+1 < k {
		end = hexBound(boundary(index+1, k))
	}
	return Range{Index: index, Shards: k, Key: key, Start: hexBound(boundary(index, k)), End: end}, nil
}

// boundary is floor(i·2^64/k) for 0 <= i < k.
func boundary(i, k int) uint64 {
	q, _ := bits.Div64(uint64(i), 0, uint64(k))
	return q
}

// hexBound spells v as the API server wants a bound: 0x and 16 lowercase
// hex digits.
func hexBound(v uint64) string {
	const digits = "0123456789abcdef"
	var b [18]byte
	b[0], b[1] = '0', 'x'
	for i := 17; i >= 2; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// Requirement is the range as a requirement of package sharding.
func (r Range) Requirement() sharding.ShardRangeRequirement {
	return sharding.ShardRangeRequirement{Key: string(r.Key), Start: r.Start, End: r.End}
}

// Selector is the range's shardSelector, the value of
// metav1.ListOptions.ShardSelector, e.g.
// shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000').
func (r Range) Selector() string {
	return sharding.NewSelector(r.Requirement()).String()
}

// Matches reports whether obj's hash of the range's Key lies in the
// range, as the API server decides it (package sharding).
func (r Range) Matches(obj runtime.Object) (bool, error) {
	ok, err := sharding.NewSelector(r.Requirement()).Matches(obj)
	if err != nil {
		return false, fmt.Errorf("unable to match %T against shard %d's range: %w", obj, r.Index, err)
	}
	return ok, nil
}

// String is the range for logs: "shard 1/4 [0x4000000000000000, 0x8000000000000000)".
func (r Range) String() string {
	return fmt.Sprintf("shard %d/%d [%s, %s)", r.Index, r.Shards, r.Start, r.End)
}

// rangeKey is the context key of the Range.
type rangeKey struct{}

func withRange(ctx context.Context, r Range) context.Context {
	return context.WithValue(ctx, rangeKey{}, r)
}

// RangeFrom returns the shard whose controllers run with ctx, from the
// context of any runnable of a shard's manager (see ShardedManager) or
// any context derived from it, such as a reconciler's. ok is false
// elsewhere.
func RangeFrom(ctx context.Context) (r Range, ok bool) {
	r, ok = ctx.Value(rangeKey{}).(Range)
	return r, ok
}
