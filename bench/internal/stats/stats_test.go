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

package stats

import (
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x) * time.Millisecond
	}
	return d
}

func TestPercentileNearestRank(t *testing.T) {
	sorted := ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{1, 10 * time.Millisecond},
		{10, 10 * time.Millisecond},
		{11, 20 * time.Millisecond},
		{50, 50 * time.Millisecond},
		{51, 60 * time.Millisecond},
		{90, 90 * time.Millisecond},
		{99, 100 * time.Millisecond},
		{100, 100 * time.Millisecond},
	} {
		if got := Percentile(sorted, tc.p); got != tc.want {
			t.Errorf("Percentile(p%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	// 30 trials, unsorted: p99 of fewer than 100 samples is the maximum.
	var in []time.Duration
	for i := 30; i >= 1; i-- {
		in = append(in, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(in)
	want := Summary{
		N: 30, Min: 1 * time.Millisecond, P50: 15 * time.Millisecond, P99: 30 * time.Millisecond,
		Max: 30 * time.Millisecond, Mean: 15500 * time.Microsecond,
	}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 30*time.Millisecond {
		t.Fatal("Summarize sorted its input in place")
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Fatalf("Summarize(nil) = %+v, want zero", got)
	}

	// 200 samples: p99 is the 198th smallest, below the maximum.
	in = in[:0]
	for i := 1; i <= 200; i++ {
		in = append(in, time.Duration(i)*time.Millisecond)
	}
	if s := Summarize(in); s.P99 != 198*time.Millisecond || s.Max != 200*time.Millisecond {
		t.Fatalf("Summarize(1..200 ms) p99 = %v, max = %v; want 198ms, 200ms", s.P99, s.Max)
	}
}

func TestRateAndMedian(t *testing.T) {
	if got := Rate(15, 30*time.Second); got != 0.5 {
		t.Errorf("Rate(15, 30s) = %v, want 0.5", got)
	}
	if got := Rate(15, 0); got != 0 {
		t.Errorf("Rate(15, 0) = %v, want 0", got)
	}
	if got := Median([]float64{3, 1, 2, 4}); got != 2 {
		t.Errorf("Median(3,1,2,4) = %v, want 2", got)
	}
	if got := Median(nil); got != 0 {
		t.Errorf("Median(nil) = %v, want 0", got)
	}
}
