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

package sidecar

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elector-dev/elector/test/internal/proc"
)

// Response is one answer of elector's HTTP server.
type Response = proc.Response

// Get requests path (such as "/" or "/metrics") from the replica.
func (r *Replica) Get(ctx context.Context, path string) (Response, error) {
	addr, err := r.Addr(ctx)
	if err != nil {
		return Response{}, err
	}
	return proc.Get(ctx, r.client, r.Name, addr, path)
}

// LeaderName returns the leader this replica reports on GET /, the answer
// of k8s.gcr.io/leader-elector:0.5: {"name":"<leader>"}.
func (r *Replica) LeaderName(ctx context.Context) (string, error) {
	resp, err := r.Get(ctx, "/")
	if err != nil {
		return "", err
	}
	return proc.LeaderName(r.Name, resp)
}

// Leader is the body of GET /leader and the data of a /watch event.
type Leader struct {
	Name     string `json:"name"`
	IsLeader bool   `json:"isLeader"`
	Since    string `json:"since"`
	Token    int64  `json:"token"`
	Expiry   string `json:"expiry"`
	Identity string `json:"identity"`
	// Error and Fix are set on GET /leader while the replica cannot take
	// part normally (an unreachable API server, a denied permission); Fix
	// holds the Role that grants a missing permission.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
	// Seen is when this program received it.
	Seen time.Time `json:"-"`
}

// Leader returns GET /leader.
func (r *Replica) Leader(ctx context.Context) (Leader, error) {
	resp, err := r.Get(ctx, "/leader")
	if err != nil {
		return Leader{}, err
	}
	var l Leader
	if resp.Status != http.StatusOK {
		return l, fmt.Errorf("GET /leader from %s: status %d: %s", r.Name, resp.Status, resp.Body)
	}
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		return l, fmt.Errorf("GET /leader from %s: %w: %s", r.Name, err, resp.Body)
	}
	l.Seen = time.Now()
	return l, nil
}

// Watch subscribes to the replica's /watch Server-Sent Events: the current
// state at once, then one per change. The channel is closed when ctx ends
// or the stream does (the replica exited); cancel ctx when done.
func (r *Replica) Watch(ctx context.Context) (<-chan Leader, error) {
	addr, err := r.Addr(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/watch", nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.stream.Do(req) //nolint:bodyclose // closed below, or by the goroutine that reads the stream
	if err != nil {
		return nil, fmt.Errorf("GET /watch from %s: %w", r.Name, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /watch from %s: status %d, Content-Type %q", r.Name, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan Leader, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				event = ""
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:") && event == "leader":
				var l Leader
				if json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &l) != nil {
					continue
				}
				l.Seen = time.Now()
				select {
				case ch <- l:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

// WaitUntilLeads waits until the replica's /watch reports that it leads,
// and returns that event (Seen is when it arrived). Subscribe with Watch
// before the cause, so the event cannot be missed.
func WaitUntilLeads(ctx context.Context, events <-chan Leader) (Leader, error) {
	for {
		select {
		case l, ok := <-events:
			if !ok {
				return Leader{}, fmt.Errorf("the /watch stream ended before the replica led")
			}
			if l.IsLeader {
				return l, nil
			}
		case <-ctx.Done():
			return Leader{}, ctx.Err()
		}
	}
}

// FirstToLead waits until one of the replicas' /watch streams (from Watch)
// reports that its replica leads, and returns that replica and event.
func FirstToLead(ctx context.Context, streams map[*Replica]<-chan Leader) (*Replica, Leader, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type led struct {
		r *Replica
		l Leader
	}
	first := make(chan led, len(streams))
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, which ends the other goroutines
	defer cancel()
	for r, events := range streams {
		wg.Go(func() {
			if l, err := WaitUntilLeads(ctx, events); err == nil {
				first <- led{r, l}
			}
		})
	}
	select {
	case f := <-first:
		return f.r, f.l, nil
	case <-ctx.Done():
		return nil, Leader{}, fmt.Errorf("no replica led: %w", ctx.Err())
	}
}
