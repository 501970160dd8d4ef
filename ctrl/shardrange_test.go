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
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/types"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/shard"
)

// selectorGrammar is what kube-apiserver's shard selector parser
// (k8s.io/apiserver/pkg/sharding.Parse) accepts for one range: a
// supported field path and two single-quoted 0x-prefixed 16-digit
// lowercase hex values, or 0x10000000000000000 for the end of the space.
var selectorGrammar = regexp.MustCompile(`^shardRange\((object\.metadata\.uid|object\.metadata\.namespace), '(0x[0-9a-f]{16})', '(0x[0-9a-f]{16}|0x10000000000000000)'\)$`)

// checkGrammar picks the K whose every selector is checked against the
// grammar (all of them would take a minute under -race): the small ones,
// those near a power of two, and the largest.
func checkGrammar(k int) bool {
	return k <= 64 || k&(k-1) == 0 || (k+1)&k == 0 || k >= shard.MaxShards-2
}

// TestRangesCoverTheHashSpace: for every K from 1 to MaxShards the K
// ranges start at 0, end at 2^64, follow each other without gap or
// overlap, are non-empty and within one hash value of equal size, and
// (for the K of checkGrammar) their selectors, built by package sharding,
// are in the API server's grammar with the same bounds.
func TestRangesCoverTheHashSpace(t *testing.T) {
	for k := 1; k <= shard.MaxShards; k++ {
		prevEnd := "0x0000000000000000"
		var sizes []uint64
		for i := range k {
			r, err := NewRange(ShardByUID, i, k)
			if err != nil {
				t.Fatalf("NewRange(%d, %d): %v", i, k, err)
			}
			if r.Start != prevEnd {
				t.Fatalf("K=%d: shard %d starts at %s, the previous ended at %s", k, i, r.Start, prevEnd)
			}
			if !sharding.HexLess(r.Start, r.End) {
				t.Fatalf("K=%d: shard %d is empty or reversed: %v", k, i, r)
			}
			if checkGrammar(k) {
				if m := selectorGrammar.FindStringSubmatch(r.Selector()); len(m) != 4 || m[1] != string(ShardByUID) || m[2] != r.Start || m[3] != r.End {
					t.Fatalf("K=%d: shard %d's selector %q is not shardRange(%s, %q, %q) in the API server's grammar", k, i, r.Selector(), ShardByUID, r.Start, r.End)
				}
			}
			start, _ := strconv.ParseUint(r.Start[2:], 16, 64)
			if r.End == endOfHashSpace {
				sizes = append(sizes, -start) // 2^64 - start, mod 2^64
			} else {
				end, _ := strconv.ParseUint(r.End[2:], 16, 64)
				sizes = append(sizes, end-start)
			}
			prevEnd = r.End
		}
		if prevEnd != endOfHashSpace {
			t.Fatalf("K=%d: the last range ends at %s, want %s", k, prevEnd, endOfHashSpace)
		}
		if k == 1 {
			continue // the one size, 2^64, does not fit a uint64
		}
		lo, hi := sizes[0], sizes[0]
		for _, s := range sizes {
			lo, hi = min(lo, s), max(hi, s)
		}
		if hi-lo > 1 {
			t.Fatalf("K=%d: range sizes differ by %d, want at most 1", k, hi-lo)
		}
	}
}

// TestRangeSelectorsMatchTheAPIDocumentation: the ranges of K = 2 and 4
// are the examples of metav1.ListOptions.ShardSelector's documentation.
func TestRangeSelectorsMatchTheAPIDocumentation(t *testing.T) {
	want := map[int][]string{
		2: {
			"shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')",
			"shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')",
		},
		4: {
			"shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000')",
			"shardRange(object.metadata.uid, '0x4000000000000000', '0x8000000000000000')",
			"shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')",
			"shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')",
		},
	}
	for k, sels := range want {
		for i, s := range sels {
			r, err := NewRange(ShardByUID, i, k)
			if err != nil {
				t.Fatal(err)
			}
			if r.Selector() != s {
				t.Errorf("K=%d shard %d: selector %q, want %q", k, i, r.Selector(), s)
			}
		}
	}
	r, err := NewRange(ShardByNamespace, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "shardRange(object.metadata.namespace, '0x0000000000000000', '0x10000000000000000')"; r.Selector() != want {
		t.Errorf("K=1 by namespace: selector %q, want %q", r.Selector(), want)
	}
}

// TestEveryObjectHasExactlyOneRange: objects with random UIDs (and
// namespaces) match exactly one of the K ranges, the one whose bounds
// hold the hash that package sharding computes.
func TestEveryObjectHasExactlyOneRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{1, 2, 3, 7, 64, shard.MaxShards} {
		for _, key := range []ShardKey{ShardByUID, ShardByNamespace} {
			ranges := make([]Range, k)
			for i := range k {
				var err error
				if ranges[i], err = NewRange(key, i, k); err != nil {
					t.Fatal(err)
				}
			}
			for n := range 50 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
					Name:      "cm",
					Namespace: fmt.Sprintf("ns-%d", rng.Uint64()),
					UID:       types.UID(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)),
				}}
				if n == 0 {
					cm.Namespace = "" // cluster-scoped: the empty namespace hashes too
				}
				var owners []int
				for i, r := range ranges {
					ok, err := r.Matches(cm)
					if err != nil {
						t.Fatal(err)
					}
					if ok {
						owners = append(owners, i)
					}
				}
				if len(owners) != 1 {
					t.Fatalf("K=%d key %s: %s/%s (uid %s) matches ranges %v, want exactly one", k, key, cm.Namespace, cm.Name, cm.UID, owners)
				}
			}
		}
	}
}

// TestNewRangeRejectsBadArguments names the field at fault.
func TestNewRangeRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		key      ShardKey
		index, k int
		field    string
	}{
		{"object.metadata.name", 0, 1, "Key"},
		{"", 0, 1, "Key"},
		{ShardByUID, 0, 0, "Shards"},
		{ShardByUID, 0, shard.MaxShards + 1, "Shards"},
		{ShardByUID, -1, 4, "Index"},
		{ShardByUID, 4, 4, "Index"},
	} {
		_, err := NewRange(tc.key, tc.index, tc.k)
		var ce *elector.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("NewRange(%q, %d, %d) = %v, want a *elector.ConfigError on %s", tc.key, tc.index, tc.k, err, tc.field)
		}
	}
}

// TestRangeFromContext: RangeFrom finds the range that withRange put in
// a context, and nothing elsewhere.
func TestRangeFromContext(t *testing.T) {
	if _, ok := RangeFrom(context.Background()); ok {
		t.Fatal("RangeFrom found a range in an empty context")
	}
	r, err := NewRange(ShardByUID, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(withRange(context.Background(), r))
	defer cancel()
	if got, ok := RangeFrom(ctx); !ok || got != r {
		t.Fatalf("RangeFrom = %v, %v; want %v", got, ok, r)
	}
}

// TestEmptyNamespaceHashesToOneRange: by namespace, cluster-scoped
// objects (namespace "") all fall in the range that holds
// 0xcbf29ce484222325, FNV-1a's hash of the empty string: shard 1 of 2,
// shard 3 of 4, as docs/sharded-controllers.md says.
func TestEmptyNamespaceHashesToOneRange(t *testing.T) {
	if h := sharding.HashField(""); h != "cbf29ce484222325" {
		t.Fatalf("hash of the empty namespace = %s, want cbf29ce484222325", h)
	}
	for k, want := range map[int]int{1: 0, 2: 1, 4: 3, 8: 6} {
		for i := range k {
			r, err := NewRange(ShardByNamespace, i, k)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := r.Matches(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "u"}})
			if err != nil {
				t.Fatal(err)
			}
			if ok != (i == want) {
				t.Errorf("K=%d: a Namespace object matches shard %d: %v, want only shard %d", k, i, ok, want)
			}
		}
	}
}
