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

package main

import (
	"runtime/debug"
	"testing"
)

// The sidecar's GC target applies only when GOGC is not set: a user's
// GOGC is the runtime's, as in any Go program.
func TestTuneGC(t *testing.T) {
	const before = 100
	for _, tc := range []struct {
		name string
		gogc string
		want int
	}{
		{"unset", "", idleGCPercent},
		{"set", "200", before},
		{"off", "off", before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := debug.SetGCPercent(before)
			defer debug.SetGCPercent(old)
			tuneGC(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			})
			if got := debug.SetGCPercent(before); got != tc.want {
				t.Fatalf("GC percent = %d, want %d", got, tc.want)
			}
		})
	}
}
