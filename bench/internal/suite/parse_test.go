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

package suite

import (
	"testing"
	"time"

	"github.com/elector-dev/elector/bench/internal/candidate"
)

func TestParseStatus(t *testing.T) {
	status := "Name:\telector\nVmPeak:\t 1272060 kB\nVmRSS:\t   25392 kB\nRssAnon:\t   12000 kB\nRssFile:\t   13392 kB\nRssShmem:\t       0 kB\n"
	m, err := parseStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (memory{rss: 25392 << 10, anon: 12000 << 10, file: 13392 << 10}); m != want {
		t.Fatalf("parseStatus = %+v, want %+v", m, want)
	}
	if _, err := parseStatus("Name:\tx\n"); err == nil {
		t.Fatal("parseStatus without VmRSS: no error")
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; utime and stime
	// are fields 14 and 15, in clock ticks.
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 37 0 0 20 0 12 0 100 1300000000 6000 18446744073709551615"
	d, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2870 * time.Millisecond; d != want {
		t.Fatalf("parseStatCPU = %v, want %v", d, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Fatal("parseStatCPU of a short line: no error")
	}
}

func TestParseTerminatedWatchers(t *testing.T) {
	metrics := `# HELP apiserver_terminated_watchers_total [ALPHA] Counter of watchers closed due to unresponsiveness broken by resource type.
# TYPE apiserver_terminated_watchers_total counter
apiserver_terminated_watchers_total{group="coordination.k8s.io",resource="leases"} 7
apiserver_terminated_watchers_total{group="",resource="pods"} 3
apiserver_watch_events_total{group="coordination.k8s.io",resource="leases"} 99
`
	if got := parseTerminatedWatchers(metrics); got != 7 {
		t.Fatalf("parseTerminatedWatchers = %d, want 7", got)
	}
	if got := parseTerminatedWatchers(""); got != 0 {
		t.Fatalf("parseTerminatedWatchers(\"\") = %d, want 0", got)
	}
}

func TestLineWriter(t *testing.T) {
	p := &proc{markers: []string{"Became leader"}, changed: make(chan struct{})}
	var lines []string
	p.onLine = func(_ time.Time, l string) { lines = append(lines, l) }
	w := &lineWriter{p: p}
	for _, chunk := range []string{"level=INFO msg=\"Start", "ing\"\nlevel=INFO msg=\"Became", " leader\"\npartial"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if len(lines) != 2 || lines[0] != `level=INFO msg="Starting"` || lines[1] != `level=INFO msg="Became leader"` {
		t.Fatalf("lines = %q", lines)
	}
	if len(p.hits) != 1 || p.hits[0].marker != "Became leader" {
		t.Fatalf("hits = %+v", p.hits)
	}
}

func TestParseStartingLine(t *testing.T) {
	line := `time=2026-11-24T05:26:55.249Z level=INFO msg=Starting lease=ns/lock identity=a user=admin server=https://127.0.0.1:1 leaseDuration=4s renewDeadline=2.4s retryPeriod=400ms command=[]`
	got, err := parseStartingLine(line)
	if err != nil {
		t.Fatal(err)
	}
	want := candidate.Timing{Lease: 4 * time.Second, Renew: 2400 * time.Millisecond, Retry: 400 * time.Millisecond}
	if got != want {
		t.Fatalf("parseStartingLine = %v, want %v", got, want)
	}
	if _, err := parseStartingLine(`level=INFO msg=Starting leaseDuration=4s`); err == nil {
		t.Fatal("parseStartingLine without renewDeadline: no error")
	}
}
