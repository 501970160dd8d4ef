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

// Package history records when chaos candidates act as leader, and checks
// the record: no two tenures may overlap.
//
// All times are CLOCK_MONOTONIC nanoseconds ([Now]), one clock shared by
// every process of the host, so that the test process, its goroutines and
// exec-mode children many processes away record on the same time line.
//
// A record is a text file with one event per line, appended with O_APPEND
// by any number of processes (a line is written with one write(2), which
// is atomic for regular files on Linux):
//
//	<kind> <who> <token> <monotonic ns> [detail...]
package history

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Kinds of events.
const (
	// Start: who began to act as leader with token. Written before acting.
	Start = "start"
	// Stop: who stopped acting. Written after acting ended.
	Stop = "stop"
	// Beat: who still acts. Children write it periodically, so that a
	// tenure ended by SIGKILL still has an end (its last beat).
	Beat = "beat"
	// Violation: a detector saw two candidates act at once, e.g. a child
	// could not take the exclusive flock that every acting child holds.
	Violation = "violation"
	// Fault: a fault was injected; who is its target ("*" for all).
	Fault = "fault"
	// Heal: every fault is healed; a leader must follow within the bound.
	Heal = "heal"
	// Write and Reject: a fenced store accepted or rejected a write.
	Write  = "write"
	Reject = "reject"
	// Note: anything else worth keeping in the record.
	Note = "note"
)

// Now returns CLOCK_MONOTONIC in nanoseconds: the clock of every record.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("history: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// Event is one line of a record.
type Event struct {
	Kind   string
	Who    string // candidate or fault target; no spaces
	Token  int64  // fencing token of the tenure, or -1
	At     int64  // CLOCK_MONOTONIC ns
	Detail string // free text, one line
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s %d %d", e.Kind, e.Who, e.Token, e.At)
	if e.Detail != "" {
		s += " " + e.Detail
	}
	return s
}

// Parse reads one line.
func Parse(line string) (Event, error) {
	f := strings.SplitN(strings.TrimRight(line, "\n"), " ", 5)
	if len(f) < 4 || f[0] == "" || f[1] == "" {
		return Event{}, fmt.Errorf("history: malformed line %q", line)
	}
	tok, err1 := strconv.ParseInt(f[2], 10, 64)
	at, err2 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Event{}, fmt.Errorf("history: malformed line %q: %w", line, err)
	}
	e := Event{Kind: f[0], Who: f[1], Token: tok, At: at}
	if len(f) == 5 {
		e.Detail = f[4]
	}
	return e, nil
}

// Recorder appends events to a record file. It is safe for concurrent
// use, and several processes may append to the same file.
//
// Within one process it also detects overlaps directly: Begin fails, and
// records a Violation, when another candidate of the same Recorder is
// acting.
type Recorder struct {
	mu     sync.Mutex
	f      *os.File
	mem    []Event
	acting map[string]int64 // who -> token
}

// Create opens (creating or appending to) the record file at path.
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("history: unable to open record: %w", err)
	}
	return &Recorder{f: f, acting: map[string]int64{}}, nil
}

// Close closes the file.
func (r *Recorder) Close() error { return r.f.Close() }

// Record appends e, stamping it with Now() when e.At is zero, and returns
// the time it carries.
func (r *Recorder) Record(e Event) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recordLocked(e)
}

func (r *Recorder) recordLocked(e Event) int64 {
	if e.At == 0 {
		e.At = Now()
	}
	e.Who = strings.ReplaceAll(e.Who, " ", "_")
	e.Detail = strings.ReplaceAll(e.Detail, "\n", " ")
	r.mem = append(r.mem, e)
	// One write per line: atomic with O_APPEND.
	_, _ = io.WriteString(r.f, e.String()+"\n")
	return e.At
}

// Begin records that who starts acting with token, and reports an error
// (also recorded as a Violation) if another candidate of this Recorder is
// acting. Call it before acting.
func (r *Recorder) Begin(who string, token int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for other, t := range r.acting {
		if other != who {
			err = fmt.Errorf("%s (token %d) started while %s (token %d) acted", who, token, other, t)
			r.recordLocked(Event{Kind: Violation, Who: who, Token: token, Detail: err.Error()})
		}
	}
	r.acting[who] = token
	r.recordLocked(Event{Kind: Start, Who: who, Token: token})
	return err
}

// End records that who stopped acting. Call it after acting ended.
func (r *Recorder) End(who string, token int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordLocked(Event{Kind: Stop, Who: who, Token: token})
	delete(r.acting, who)
}

// Fault records an injected fault on target ("*" for all candidates).
func (r *Recorder) Fault(target, what string) int64 {
	return r.Record(Event{Kind: Fault, Who: target, Token: -1, Detail: what})
}

// Heal records that every fault is healed.
func (r *Recorder) Heal(what string) int64 {
	return r.Record(Event{Kind: Heal, Who: "*", Token: -1, Detail: what})
}

// Note records free text.
func (r *Recorder) Note(who, what string) {
	r.Record(Event{Kind: Note, Who: who, Token: -1, Detail: what})
}

// Read parses a record file. A torn last line (a writer killed mid-way)
// is ignored; any other malformed line is an error.
func Read(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: unable to read record: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: unable to read record: %w", err)
	}
	evs := make([]Event, 0, len(lines))
	for i, line := range lines {
		e, err := Parse(line)
		switch {
		case err == nil:
			evs = append(evs, e)
		case i < len(lines)-1:
			return nil, err
		}
	}
	return evs, nil
}

// AppendLine appends one event to the record file at path with a single
// write; it is what child processes use.
func AppendLine(f *os.File, e Event) error {
	if e.At == 0 {
		e.At = Now()
	}
	_, err := io.WriteString(f, e.String()+"\n")
	return err
}

// Tail follows a record file as it grows and tracks who acts now.
type Tail struct {
	path    string
	off     int64
	partial string
	acting  map[string]tenure
	events  int
}

type tenure struct {
	token       int64
	start, last int64
}

// NewTail follows the record at path from its beginning.
func NewTail(path string) *Tail { return &Tail{path: path, acting: map[string]tenure{}} }

// Poll reads what was appended since the last Poll.
func (t *Tail) Poll() error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	t.off += int64(len(b))
	lines := strings.Split(t.partial+string(b), "\n")
	t.partial = lines[len(lines)-1]
	for _, line := range lines[:len(lines)-1] {
		e, err := Parse(line)
		if err != nil {
			continue
		}
		t.events++
		switch e.Kind {
		case Start:
			t.acting[e.Who] = tenure{token: e.Token, start: e.At, last: e.At}
		case Beat:
			if a, ok := t.acting[e.Who]; ok && a.token == e.Token {
				a.last = e.At
				t.acting[e.Who] = a
			}
		case Stop:
			if a, ok := t.acting[e.Who]; ok && a.token == e.Token {
				delete(t.acting, e.Who)
			}
		}
	}
	return nil
}

// Leader returns who acts now, and since when. With stale > 0, a
// candidate that has not recorded a beat (or its start) for stale
// nanoseconds is taken for dead: a killed child records no stop.
func (t *Tail) Leader(stale int64) (who string, since int64, ok bool) {
	now := Now()
	for w, a := range t.acting {
		if stale > 0 && now-a.last > stale {
			continue
		}
		if !ok || a.start > since {
			who, since, ok = w, a.start, true
		}
	}
	return who, since, ok
}
