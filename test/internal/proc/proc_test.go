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

package proc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/test/internal/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOutputAndExitCode: both streams are collected apart and together,
// each line is passed on once (an unterminated last one at exit), and
// OnExit runs before Done is closed.
func TestOutputAndExitCode(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	exited := false
	p, err := proc.Start(proc.Options{
		Name: "sh", Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2; printf tail; exit 3"},
		OnLine: func(line string, stderr bool) {
			mu.Lock()
			defer mu.Unlock()
			if stderr {
				line = "2:" + line
			}
			lines = append(lines, line)
		},
		OnExit:    func() { mu.Lock(); exited = true; mu.Unlock() },
		WaitDelay: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3", code, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !exited {
		t.Error("OnExit was not called before Done")
	}
	// Each stream keeps its order; the two are read apart, so their
	// interleaving is not defined.
	var out, errs []string
	for _, l := range lines {
		if e, ok := strings.CutPrefix(l, "2:"); ok {
			errs = append(errs, e)
		} else {
			out = append(out, l)
		}
	}
	if got := strings.Join(out, ",") + "|" + strings.Join(errs, ","); got != "out,tail|err" {
		t.Errorf("lines %q, want stdout out,tail and stderr err", lines)
	}
	if p.Stdout() != "out\ntail" || p.Stderr() != "err\n" || len(p.Output()) != len("out\nerr\ntail") {
		t.Errorf("Stdout %q, Stderr %q, Output %q", p.Stdout(), p.Stderr(), p.Output())
	}
}

// TestKillEndsTheGroup: Kill SIGKILLs the process group, the exit code says
// so, and a second Kill and a Signal after the exit do nothing.
func TestKillEndsTheGroup(t *testing.T) {
	p, err := proc.Start(proc.Options{Name: "sleep", Path: "/bin/sh", Args: []string{"-c", "sleep 60 & wait"}, WaitDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 {
		t.Fatalf("ExitCode %d while running", p.ExitCode())
	}
	p.Kill()
	if code := p.ExitCode(); code != 128+int(syscall.SIGKILL) {
		t.Errorf("ExitCode %d after Kill", code)
	}
	p.Kill()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
}

func TestGetAndLeaderName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusTeapot)
			return
		}
		_, _ = w.Write([]byte(`{"name":"pod-a"}`))
	}))
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	addr := strings.TrimPrefix(srv.URL, "http://")
	resp, err := proc.Get(context.Background(), c, "srv", addr, "/")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := proc.LeaderName("srv", resp); err != nil || name != "pod-a" {
		t.Errorf("LeaderName = %q, %v", name, err)
	}
	resp, err = proc.Get(context.Background(), c, "srv", addr, "/bad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proc.LeaderName("srv", resp); err == nil || !strings.Contains(err.Error(), "status 418") {
		t.Errorf("LeaderName of a 418: %v", err)
	}
}
