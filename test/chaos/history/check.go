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

package history

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Interval is one tenure: the time a candidate acted as leader with one
// token.
type Interval struct {
	Who   string
	Token int64
	Start int64 // CLOCK_MONOTONIC ns
	End   int64 // its Stop; else its last Beat (the candidate was killed); else Start
	// Stopped reports that the candidate recorded its Stop; otherwise End
	// is its last sign of life.
	Stopped bool
}

// Duration is the length of the tenure.
func (i Interval) Duration() time.Duration { return time.Duration(i.End - i.Start) }

func (i Interval) String() string {
	how := "stopped"
	if !i.Stopped {
		how = "last seen"
	}
	return fmt.Sprintf("%s token %d [%d, %d] %s after %v", i.Who, i.Token, i.Start, i.End, how, i.Duration().Round(time.Millisecond))
}

// Overlap is two tenures that overlap in time.
type Overlap struct{ A, B Interval }

func (o Overlap) String() string {
	return fmt.Sprintf("%s overlaps %s by %v", o.A, o.B, time.Duration(min(o.A.End, o.B.End)-o.B.Start))
}

// Recovery is how long after a heal a leader acted again.
type Recovery struct {
	Heal Event
	// After is the time from the heal to the start of the first tenure
	// that lasted (see Options.Stable); zero if the leader at the heal
	// kept leading.
	After  time.Duration
	Leader string
}

// Takeover is a tenure ended by a fault, and the next tenure.
type Takeover struct {
	Fault Event
	From  string
	To    string
	// After is the time from the fault to the start of the next tenure.
	After time.Duration
}

// Report is the result of Check.
type Report struct {
	Intervals  []Interval
	Overlaps   []Overlap
	Violations []Event // recorded by detectors (flock, in-process check)
	// Gaps are the leaderless times between consecutive tenures.
	Gaps        []time.Duration
	Faults      int
	Recoveries  []Recovery
	Unrecovered []Event // heals after which no tenure started at all
	Takeovers   []Takeover
	// Writes and Rejects count a fenced store's answers.
	Writes, Rejects int
}

// Safe reports whether no overlap was found, by the intervals or by a
// detector.
func (r *Report) Safe() bool { return len(r.Overlaps) == 0 && len(r.Violations) == 0 }

// Problems lists every overlap and violation, one per line.
func (r *Report) Problems() string {
	var b strings.Builder
	for _, o := range r.Overlaps {
		fmt.Fprintf(&b, "overlap: %s\n", o)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "violation: %s\n", v)
	}
	return b.String()
}

// Options tune Check.
type Options struct {
	// Stable is how long a tenure must last after a heal to count as the
	// leader being back; a tenure cut short by the next fault or by the
	// end of the record counts too. Zero counts any tenure.
	Stable time.Duration
}

// Check assembles tenures from events and checks that none overlap.
func Check(evs []Event, opts Options) Report {
	evs = slices.Clone(evs)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })

	var rep Report
	type key struct {
		who   string
		token int64
	}
	open := map[key]int{} // index into rep.Intervals
	var end int64
	for _, e := range evs {
		end = max(end, e.At)
		k := key{e.Who, e.Token}
		switch e.Kind {
		case Start:
			open[k] = len(rep.Intervals)
			rep.Intervals = append(rep.Intervals, Interval{Who: e.Who, Token: e.Token, Start: e.At, End: e.At})
		case Beat, Stop:
			i, ok := open[k]
			if !ok {
				continue
			}
			rep.Intervals[i].End = e.At
			if e.Kind == Stop {
				rep.Intervals[i].Stopped = true
				delete(open, k)
			}
		case Violation:
			rep.Violations = append(rep.Violations, e)
		case Fault:
			rep.Faults++
		case Write:
			rep.Writes++
		case Reject:
			rep.Rejects++
		}
	}
	iv := rep.Intervals
	sort.SliceStable(iv, func(i, j int) bool { return iv[i].Start < iv[j].Start })

	// Overlaps: every pair with a.Start <= b.Start < a.End.
	for j := range iv {
		for i := 0; i < j; i++ {
			if iv[j].Start < iv[i].End {
				rep.Overlaps = append(rep.Overlaps, Overlap{A: iv[i], B: iv[j]})
			}
		}
	}
	// Gaps between consecutive tenures.
	var last int64 = -1
	for _, in := range iv {
		if last >= 0 && in.Start >= last {
			rep.Gaps = append(rep.Gaps, time.Duration(in.Start-last))
		}
		last = max(last, in.End)
	}

	for i, e := range evs {
		switch e.Kind {
		case Heal:
			nextFault := end
			for _, n := range evs[i+1:] {
				if n.Kind == Fault {
					nextFault = n.At
					break
				}
			}
			r, ok := recovery(iv, e, nextFault, end, opts.Stable)
			if ok {
				rep.Recoveries = append(rep.Recoveries, r)
			} else {
				rep.Unrecovered = append(rep.Unrecovered, e)
			}
		case Fault:
			if t, ok := takeover(iv, evs[i+1:], e); ok {
				rep.Takeovers = append(rep.Takeovers, t)
			}
		}
	}
	return rep
}

// recovery finds the first tenure after heal h that lasted: stable long,
// or until the next fault, or until the end of the record.
func recovery(iv []Interval, h Event, nextFault, end int64, stable time.Duration) (Recovery, bool) {
	for _, in := range iv {
		if in.End < h.At {
			continue
		}
		from := max(in.Start, h.At)
		if time.Duration(in.End-from) >= stable || in.End >= nextFault || in.End >= end {
			return Recovery{Heal: h, After: time.Duration(from - h.At), Leader: in.Who}, true
		}
	}
	return Recovery{}, false
}

// takeover reports a tenure that fault f deposed: one that was acting
// when f was injected on its candidate (or on all) and ended before the
// next heal.
func takeover(iv []Interval, after []Event, f Event) (Takeover, bool) {
	healAt := int64(-1)
	for _, e := range after {
		if e.Kind == Heal {
			healAt = e.At
			break
		}
	}
	for i, in := range iv {
		if in.Start > f.At || in.End < f.At || (f.Who != "*" && f.Who != in.Who) {
			continue
		}
		if healAt >= 0 && in.End > healAt {
			return Takeover{}, false // it survived the fault
		}
		for _, next := range iv[i+1:] {
			if next.Start >= in.End {
				return Takeover{Fault: f, From: in.Who, To: next.Who, After: time.Duration(next.Start - f.At)}, true
			}
		}
		return Takeover{}, false
	}
	return Takeover{}, false
}

// Percentile returns the p-th percentile (0–100) of ds by the
// nearest-rank method, or 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}
