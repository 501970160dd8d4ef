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

// Command actor is the command that chaos sidecar replicas run in exec
// mode, i.e. only while they lead. It is the thing that must never run
// twice at once.
//
// While it acts it holds an exclusive flock on a shared file
// ($CHAOS_LOCK). It takes the lock without waiting when it starts: if
// another actor holds it, two actors act at once, and it records a
// violation (and acts anyway, as a second leader would). The kernel
// releases the lock when the holder dies, however it dies, so this detects
// every overlap, also one with an actor that was killed before it could
// record anything, or one that is frozen.
//
// It appends to the record ($CHAOS_RECORD, see package history): start
// once it holds the lock, a beat every $CHAOS_BEAT (default 20ms), stop on
// SIGTERM; all on CLOCK_MONOTONIC. With $CHAOS_STORE it also writes to
// that fenced store with its token ($ELECTOR_TOKEN) at every beat.
//
// It exits on SIGTERM, when its parent (the watchdog) is gone, or after
// $CHAOS_MAX_LIFETIME (default 10m), so that it never outlives a test.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/elector-dev/elector/test/chaos/history"
)

func main() { os.Exit(run()) }

func run() int {
	// Die with the watchdog even if it is SIGKILLed.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	ppid := os.Getppid()
	if ppid == 1 {
		return 1
	}
	id := os.Getenv("ELECTOR_IDENTITY")
	token, err := strconv.ParseInt(os.Getenv("ELECTOR_TOKEN"), 10, 64)
	if id == "" || err != nil {
		fmt.Fprintln(os.Stderr, "actor: ELECTOR_IDENTITY and ELECTOR_TOKEN must be set (run me with elector -- actor)")
		return 2
	}
	beat := durationEnv("CHAOS_BEAT", 20*time.Millisecond)
	maxLife := durationEnv("CHAOS_MAX_LIFETIME", 10*time.Minute)
	rec, err := os.OpenFile(os.Getenv("CHAOS_RECORD"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "actor:", err)
		return 2
	}
	defer rec.Close()
	lock, err := os.OpenFile(os.Getenv("CHAOS_LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "actor:", err)
		return 2
	}
	defer lock.Close()
	record := func(kind, detail string) {
		_ = history.AppendLine(rec, history.Event{Kind: kind, Who: id, Token: token, Detail: detail})
	}

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	deadline := time.After(maxLife)

	// Take the lock; not getting it at once is an overlap. Act anyway, as
	// a second leader would, and take the lock once it is free.
	locked := false
	tryLock := func() {
		if locked {
			return
		}
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			locked = true
		case errors.Is(err, unix.EWOULDBLOCK):
		default:
			fmt.Fprintln(os.Stderr, "actor: flock:", err)
		}
	}
	tryLock()
	if !locked {
		record(history.Violation, "flock held by another actor: two actors act at once")
	}
	record(history.Start, "")

	var store *storeClient
	if u := os.Getenv("CHAOS_STORE"); u != "" {
		store = &storeClient{url: u, id: id, token: token, hc: &http.Client{Timeout: 500 * time.Millisecond}}
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-term:
			record(history.Stop, "SIGTERM")
			return 0
		case <-deadline:
			record(history.Stop, "max lifetime")
			return 1
		case <-tick.C:
			if os.Getppid() != ppid {
				record(history.Stop, "orphaned")
				return 1
			}
			tryLock()
			record(history.Beat, "")
			if store != nil {
				store.write(seq)
			}
		}
	}
}

// storeClient writes to the fenced store of the chaos harness.
type storeClient struct {
	url   string
	id    string
	token int64
	hc    *http.Client
}

func (s *storeClient) write(seq int) {
	v := url.Values{"who": {s.id}, "token": {strconv.FormatInt(s.token, 10)}, "seq": {strconv.Itoa(seq)}}
	resp, err := s.hc.PostForm(s.url, v)
	if err == nil {
		resp.Body.Close()
	}
}

func durationEnv(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}
