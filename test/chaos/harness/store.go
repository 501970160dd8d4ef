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

package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/elector-dev/elector/test/chaos/history"
)

// Store is a downstream store that fences writes: it accepts a write only
// with a token at least as high as the highest it has accepted, as
// doc.go and Example_fencing recommend. Actors write to it over HTTP; it
// records every answer in the Env's record.
type Store struct {
	URL string

	rec *history.Recorder
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	highest  int64
	accepted []StoreWrite
	rejected []StoreWrite
}

// StoreWrite is one write the store answered.
type StoreWrite struct {
	Who   string
	Token int64
	At    int64 // CLOCK_MONOTONIC ns
}

// StartStore serves a Store on loopback.
func (e *Env) StartStore() (*Store, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Store{URL: "http://" + ln.Addr().String() + "/write", rec: e.Rec, ln: ln, highest: -1}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tok, err := strconv.ParseInt(r.PostForm.Get("token"), 10, 64)
	who := r.PostForm.Get("who")
	if err != nil || who == "" {
		http.Error(w, "who and token required", http.StatusBadRequest)
		return
	}
	if err := s.Write(who, tok); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ErrStaleToken is the store's answer to a deposed leader.
var ErrStaleToken = errors.New("store: stale fencing token")

// Write accepts a write by who with token, or rejects it as stale.
func (s *Store) Write(who string, token int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.highest {
		at := s.rec.Record(history.Event{Kind: history.Reject, Who: who, Token: token, Detail: fmt.Sprintf("highest %d", s.highest)})
		s.rejected = append(s.rejected, StoreWrite{who, token, at})
		return fmt.Errorf("%w: %d < %d", ErrStaleToken, token, s.highest)
	}
	s.highest = token
	at := s.rec.Record(history.Event{Kind: history.Write, Who: who, Token: token})
	s.accepted = append(s.accepted, StoreWrite{who, token, at})
	return nil
}

// Writes returns the accepted and the rejected writes so far.
func (s *Store) Writes() (accepted, rejected []StoreWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StoreWrite(nil), s.accepted...), append([]StoreWrite(nil), s.rejected...)
}

// Close stops the server.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
