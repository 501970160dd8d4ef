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
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/test/chaos/faultproxy"
	"github.com/elector-dev/elector/test/chaos/skewclock"
)

// LibCandidate is an elector.Elector in this process with its own fault
// proxy and its own clock. Its leader function records its tenure and
// takes a while (up to half of StopGrace) to stop, as real work does.
// When Run returns (leadership lost) it campaigns again.
type LibCandidate struct {
	ID    string
	Proxy *faultproxy.Proxy
	Clock *skewclock.Clock

	cancel context.CancelFunc
	done   chan struct{}
	// throttled: the Throttle fault is on; the transport answers 429.
	throttled *atomic.Bool

	mu        sync.Mutex
	errors    []error // unexpected results of Run
	forbidden int     // Runs ended by a 403: only a candidate that never had access may see one
	runs      int
}

// throttleRetryAfter is the Retry-After of an injected 429, as API
// Priority and Fairness sends.
const throttleRetryAfter = "1"

// throttler answers every request but watches with 429 while on is set,
// before it leaves the process: client-go sees the answer of an API
// server under load and retries after Retry-After.
type throttler struct {
	on   *atomic.Bool
	next http.RoundTripper
}

func (t throttler) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.on.Load() || r.URL.Query().Get("watch") == "true" {
		return t.next.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too many requests, please try again later","reason":"TooManyRequests","code":429}`
	return &http.Response{
		StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Retry-After": {throttleRetryAfter}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// StartLib starts a library candidate whose clock runs at rate with the
// given offset. Stop it with Stop.
func (e *Env) StartLib(id string, t Timing, rate float64, offset time.Duration, seed uint64) (*LibCandidate, error) {
	p, err := faultproxy.New(e.apiAddr())
	if err != nil {
		return nil, err
	}
	throttled := &atomic.Bool{}
	rc := e.via(p.Addr())
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return throttler{on: throttled, next: rt} }
	client, err := coordinationv1client.NewForConfig(rc)
	if err != nil {
		p.Close()
		return nil, err
	}
	clk := skewclock.New(rate, offset)
	el, err := elector.New(elector.Config{
		Leases: client.Leases(e.NS), Namespace: e.NS, Name: e.Lease, Identity: id,
		LeaseDuration: t.Lease, RenewDeadline: t.Renew, RetryPeriod: t.Retry,
		Clock:  clk,
		Logger: slog.New(slog.NewTextHandler(logWriter{e}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("candidate", id),
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &LibCandidate{ID: id, Proxy: p, Clock: clk, cancel: cancel, done: make(chan struct{}), throttled: throttled}
	rng := rand.New(rand.NewPCG(seed, 0))
	stopGrace := min(elector.DefaultStopGrace, (t.Renew-t.Retry)/2)
	var rngMu sync.Mutex
	stopDelay := func() time.Duration {
		rngMu.Lock()
		defer rngMu.Unlock()
		return time.Duration(rng.Int64N(int64(stopGrace / 2)))
	}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			err := el.Run(ctx, func(ctx context.Context, term elector.Term) error {
				tok := int64(term.Token)
				if err := e.Rec.Begin(id, tok); err != nil {
					e.Logf("OVERLAP: %v", err)
				}
				<-ctx.Done()
				time.Sleep(stopDelay()) // stopping real work takes time
				e.Rec.End(id, tok)
				return nil
			})
			c.mu.Lock()
			c.runs++
			var fe *elector.ForbiddenError
			switch {
			case err == nil, errors.Is(err, elector.ErrLeadershipLost):
			case errors.As(err, &fe):
				// Final only for a candidate that never had a request
				// accepted; every candidate here had, so it is a failure.
				c.forbidden++
				c.errors = append(c.errors, err)
				e.Rec.Note(id, "Run = ForbiddenError: "+err.Error())
			default:
				c.errors = append(c.errors, err)
			}
			c.mu.Unlock()
			if err != nil && !errors.Is(err, elector.ErrLeadershipLost) {
				e.Logf("%s: Run = %v", id, err)
				select {
				case <-ctx.Done():
				case <-time.After(t.Retry):
				}
			}
		}
	}()
	return c, nil
}

// Stop ends the candidate (releasing the Lease if it leads) and closes its
// proxy. It reports the unexpected errors Run returned, such as
// ErrStopOverrun.
func (c *LibCandidate) Stop() []error {
	c.Proxy.Heal()
	c.cancel()
	<-c.done
	c.Proxy.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errors
}

// Runs is how many times Run has returned so far: 0 for a candidate
// that has kept campaigning, or leading, since it started.
func (c *LibCandidate) Runs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs
}

// Forbidden is how many Runs ended with a 403.
func (c *LibCandidate) Forbidden() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forbidden
}

// Target is what a fault applies to.
func (c *LibCandidate) Target() string { return c.ID }

// logWriter sends slog lines to the Env's log.
type logWriter struct{ e *Env }

func (w logWriter) Write(b []byte) (int, error) {
	if w.e.Log != nil {
		fmt.Fprint(w.e.Log, string(b))
	}
	return len(b), nil
}
