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

import "runtime/debug"

// idleGCPercent is the sidecar's garbage collection target (GOGC) when the
// environment sets none. An idle sidecar keeps under 1 MiB of live heap
// while renewals and watch events make garbage steadily (about 20 KiB a
// second as leader). Go's default, 100, also means a 4 MiB minimum heap:
// that garbage piles up to 4 MiB before a collection and the freed pages
// stay resident, so a leader's anonymous memory climbs to 6.9-7.4 MiB
// within five idle minutes and a follower's to 5 MiB within six. At 25 (a
// 1 MiB minimum) they stay near 5.0 and 4.4 MiB, with no CPU difference
// measurable at the kernel's 10 ms resolution over five idle minutes (the
// CPU seconds per idle minute are in BENCHMARKS.md, Footprint); in its first minutes a follower holds about 1 MiB
// more than with the default, which has not collected yet (measured with
// two replicas on 2 CPUs; the footprint in BENCHMARKS.md). GOGC and
// GOMEMLIMIT in the environment still decide, as in any Go program.
const idleGCPercent = 25

// tuneGC applies idleGCPercent unless the environment sets GOGC (the
// runtime has already read it then).
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(idleGCPercent)
	}
}
