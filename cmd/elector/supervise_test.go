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
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// syncBuffer is a bytes.Buffer safe for concurrent use that signals when
// a marker was written.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
}

func newSyncBuffer(marker string) *syncBuffer {
	return &syncBuffer{marker: marker, seen: make(chan struct{})}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.marker != "" && strings.Contains(b.buf.String(), b.marker) {
		b.marker = ""
		close(b.seen)
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestSupervisor runs command under this test binary as the watchdog
// (see TestMain), with a deadline an hour away.
func newTestSupervisor(command ...string) (*supervisor, *syncBuffer, *syncBuffer) {
	out, logs := newSyncBuffer("ready"), newSyncBuffer("")
	return &supervisor{
		command:   command,
		self:      os.Args[0],
		logFormat: "text",
		lease:     "team-a/my-app",
		grace:     200 * time.Millisecond,
		heartbeat: 50 * time.Millisecond,
		deadline:  func() (time.Time, bool) { return time.Now().Add(time.Hour), true },
		clock:     clock.RealClock{},
		stdout:    out,
		stderr:    logs,
		log:       slog.New(slog.NewTextHandler(logs, nil)),
	}, out, logs
}

var term7 = elector.Term{Token: 7, Identity: "pod-a"}

func TestSupervisorEnvironmentAndExitCodes(t *testing.T) {
	s, out, logs := newTestSupervisor("sh", "-c", `echo "$ELECTOR_TOKEN $ELECTOR_IDENTITY $ELECTOR_LEASE"`)
	if err := s.run(context.Background(), term7); err != nil {
		t.Fatalf("run = %v; logs:\n%s", err, logs)
	}
	if got := out.String(); got != "7 pod-a team-a/my-app\n" {
		t.Errorf("command saw %q", got)
	}

	s, _, logs = newTestSupervisor("sh", "-c", "exit 3")
	err := s.run(context.Background(), term7)
	var ce *exitCodeError
	if !errors.As(err, &ce) || ce.code != 3 {
		t.Errorf("run = %v, want exit code 3; logs:\n%s", err, logs)
	}
}

// When leadership ends the command gets SIGTERM; one that ignores it is
// killed after grace. Either way run returns nil.
func TestSupervisorStop(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		killed       bool
	}{
		{"obeys SIGTERM", "echo ready; exec sleep 100", false},
		{"ignores SIGTERM", `trap "" TERM; echo ready; sleep 100`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, out, logs := newTestSupervisor("sh", "-c", tc.script)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.run(ctx, term7) }()
			testwait.Recv(t, out.seen, "the command to start")
			cancel()
			if err := testwait.Recv(t, done, "run to return"); err != nil {
				t.Fatalf("run = %v; logs:\n%s", err, logs)
			}
			if got := strings.Contains(logs.String(), "Command did not stop within grace"); got != tc.killed {
				t.Errorf("killed after grace = %v, want %v; logs:\n%s", got, tc.killed, logs)
			}
		})
	}
}

// An elector that stops sending heartbeats (frozen) cannot keep the
// command alive: the watchdog kills it at the last deadline and reports
// ExitLost.
func TestSupervisorSilentElector(t *testing.T) {
	s, _, logs := newTestSupervisor("sleep", "100")
	deadline := time.Now().Add(300 * time.Millisecond)
	s.deadline = func() (time.Time, bool) { return deadline, true }
	s.heartbeat = time.Hour // only the first heartbeat is sent
	err := s.run(context.Background(), term7)
	var ce *exitCodeError
	if !errors.As(err, &ce) || ce.code != ExitLost {
		t.Fatalf("run = %v, want exit code %d; logs:\n%s", err, ExitLost, logs)
	}
	if !strings.Contains(logs.String(), `reason="heartbeat deadline passed"`) {
		t.Errorf("logs:\n%s", logs)
	}
}
