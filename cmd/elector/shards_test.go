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
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/shard"
)

func TestParseShards(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		msg  string // "" = valid
	}{
		{"valid", []string{"--election=workers", "--shards=12", "--", "sleep", "1"}, nil, ""},
		{"zero", []string{"--election=workers", "--shards=0"}, nil, "elector: --shards=0: must be a whole number from 1 to 1024"},
		{"not a number", []string{"--election=workers", "--shards=many"}, nil, "elector: --shards=many: must be a whole number from 1 to 1024"},
		{"too many", []string{"--election=workers", "--shards=1025"}, nil, "elector: --shards=1025: must be a whole number from 1 to 1024"},
		{
			"group with a dot",
			[]string{"--election=my.workers", "--shards=4"},
			nil,
			"elector: --election=my.workers: with --shards it names the group and must be a DNS-1123 label of at most 40 characters (its Leases are NAME-shards, NAME-coordinator and NAME-m-<hash>)",
		},
		{
			"with a leader label",
			[]string{"--election=workers", "--shards=4", "--leader-label=a=b"},
			podEnv,
			"elector: --shards cannot be combined with --leader-label: every replica owns shards; select the Pods by another label",
		},
		{
			"with migration",
			[]string{"--election=workers", "--shards=4", "--migrate-from=endpoints"},
			nil,
			"elector: --shards cannot be combined with --migrate-from: a sharded group has no old lock to migrate from",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, fakeEnv(tc.env))
			if tc.msg == "" {
				if err != nil || c.shards != 12 {
					t.Fatalf("parseConfig: %v, shards %d; want 12", err, c.shards)
				}
				sets := requiredPermissions(c)
				if len(sets) != 1 || len(sets[0].rules) != 5 {
					t.Fatalf("sharded mode needs %v, want the 5 shared Lease rules", sets)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) || ue.code != ExitConfig || err.Error() != tc.msg {
				t.Fatalf("parseConfig: %v\nwant: %s (exit %d)", err, tc.msg, ExitConfig)
			}
		})
	}
}

// One replica of a group on the fake API owns every shard; /shards says
// so, with tokens, and /watch starts with the same state as a "shards"
// event.
func TestShardHandlers(t *testing.T) {
	const k = 4
	fc := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC))
	s, err := shard.New(shard.Config{
		Leases: fake.NewLeases().Leases("team-a"), Namespace: "team-a", Group: "workers", Identity: "pod-a", Shards: k,
		Clock: fc, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	changed, stop := s.Changes()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan int, k)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(ctx context.Context, i int, _ elector.Term) error {
			running <- i
			<-ctx.Done()
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := testwait.Recv(t, done, "Run to return"); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for range k {
		select {
		case <-running:
		case <-time.After(10 * time.Second): // a failure deadline, not a timing assertion
			t.Fatal("the replica did not start every shard")
		}
	}
	// Running is updated right after the functions start.
	for len(s.Assignment().Running) != k {
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("Assignment lists %v running", s.Assignment().Running)
		}
	}

	reg := prometheus.NewRegistry()
	h := &shardHandlers{s: s, base: &handlers{identity: "pod-a", gatherer: reg, clock: fc}}
	mux := h.mux()
	rr := get(t, mux, http.MethodGet, "/shards")
	var body struct {
		Identity string `json:"identity"`
		Shards   int    `json:"shards"`
		Running  []struct {
			Shard int   `json:"shard"`
			Token int64 `json:"token"`
		} `json:"running"`
		Table []struct {
			Owner string `json:"owner"`
			Token int64  `json:"token"`
		} `json:"table"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET /shards: %v: %s", err, rr.Body)
	}
	if rr.Code != http.StatusOK || body.Identity != "pod-a" || body.Shards != k || len(body.Running) != k || len(body.Table) != k {
		t.Fatalf("GET /shards = %d %s", rr.Code, rr.Body)
	}
	for i, e := range body.Table {
		if e.Owner != "pod-a" || e.Token != 1 || body.Running[i].Token != 1 {
			t.Fatalf("shard %d: owner %q token %d (running token %d), want pod-a with token 1", i, e.Owner, e.Token, body.Running[i].Token)
		}
	}
	if rr := get(t, mux, http.MethodGet, "/readyz"); rr.Code != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s", rr.Code, rr.Body)
	}
	if rr := get(t, mux, http.MethodGet, "/healthz"); rr.Code != http.StatusOK {
		t.Fatalf("GET /healthz = %d %s", rr.Code, rr.Body)
	}

	// With --health-probe-bind-address and --metrics-bind-address the
	// sharded mode splits its endpoints as one election does (ports.go).
	split := &shardHandlers{s: s, base: &handlers{identity: "pod-a", gatherer: reg, clock: fc, probeAddr: ":8081", metricsAddr: ":8080"}}
	api, probes, metrics := split.mux(), split.base.probesMux(split.healthz, split.readyz), split.base.metricsMux()
	for _, c := range []struct {
		name string
		mux  http.Handler
		path string
		code int
	}{
		{"--http", api, "/shards", http.StatusOK},
		{"--http", api, "/", http.StatusOK},
		{"--http", api, "/healthz", http.StatusNotFound},
		{"--http", api, "/readyz", http.StatusNotFound},
		{"--http", api, "/metrics", http.StatusNotFound},
		{"probes", probes, "/healthz", http.StatusOK},
		{"probes", probes, "/readyz", http.StatusOK},
		{"probes", probes, "/shards", http.StatusNotFound},
		{"probes", probes, "/metrics", http.StatusNotFound},
		{"metrics", metrics, "/metrics", http.StatusOK},
		{"metrics", metrics, "/shards", http.StatusNotFound},
		{"metrics", metrics, "/healthz", http.StatusNotFound},
	} {
		if rr := get(t, c.mux, http.MethodGet, c.path); rr.Code != c.code {
			t.Errorf("%s: GET %s = %d %s, want %d", c.name, c.path, rr.Code, rr.Body, c.code)
		}
	}

	srv := httptest.NewServer(mux)
	defer srv.Close()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	req, _ := http.NewRequestWithContext(wctx, http.MethodGet, srv.URL+"/watch", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() || sc.Text() != "event: shards" || !sc.Scan() || !strings.HasPrefix(sc.Text(), "data: {") || !strings.Contains(sc.Text(), `"identity":"pod-a"`) {
		t.Fatalf("/watch began with %q", sc.Text())
	}
}
