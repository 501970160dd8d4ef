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
