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

package testwait

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTimeoutFromEnv(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"": DefaultTimeout, "2m": 2 * time.Minute, "junk": DefaultTimeout, "-1s": DefaultTimeout, "0": DefaultTimeout,
	} {
		if got := timeoutFromEnv(v); got != want {
			t.Errorf("timeoutFromEnv(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestWaitsThatSucceed(t *testing.T) {
	ch := make(chan int, 1)
	Send(t, ch, 7, "room for a value")
	if got := Recv(t, ch, "a value"); got != 7 {
		t.Errorf("Recv = %d, want 7", got)
	}
	close(ch)
	if _, ok := RecvOK(t, ch, "the close"); ok {
		t.Error("RecvOK on a closed channel reported a value")
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	boom := errors.New("boom")
	go cancel(boom)
	if err := Done(t, ctx, "the context to end"); !errors.Is(err, boom) {
		t.Errorf("Done = %v, want the cause %v", err, boom)
	}

	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	Until(t, "three increments", func() bool { return n.Load() == 3 })

	ran := false
	Call(t, "the function to return", func() { ran = true })
	if !ran {
		t.Error("Call returned before its function ran")
	}
}

// The failing waits run in a child process (this test binary, with
// ELECTOR_TEST_WAIT short), so that their failure can be checked.
const childEnv = "TESTWAIT_CHILD"

// waitForever is the child's test: a wait that must time out.
func waitForever(t *testing.T, kind string) {
	switch kind {
	case "recv":
		Recv(t, make(chan int), "a value that never comes")
	case "send":
		Send(t, make(chan int), 1, "a receiver that never comes")
	case "done":
		Done(t, context.Background(), "a context that never ends")
	case "until":
		Until(t, "a condition that never holds", func() bool { return false })
	case "call":
		block := make(chan struct{})
		defer close(block)
		Call(t, "a function that never returns", func() { <-block })
	}
	t.Error("the wait returned")
}

func TestWaitsThatTimeOut(t *testing.T) {
	if kind := os.Getenv(childEnv); kind != "" {
		waitForever(t, kind)
		return
	}
	for kind, what := range map[string]string{
		"recv":  "a value that never comes",
		"send":  "a receiver that never comes",
		"done":  "a context that never ends",
		"until": "a condition that never holds",
		"call":  "a function that never returns",
	} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWaitsThatTimeOut$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+kind, "ELECTOR_TEST_WAIT=50ms")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("%s: child = %v, want a failed test\n%s", kind, err, out)
			continue
		}
		for _, want := range []string{"timed out after 50ms waiting for " + what, "goroutines when the wait for " + what, "TestWaitsThatTimeOut"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: the child's output lacks %q:\n%s", kind, want, out)
			}
		}
		if strings.Contains(string(out), "the wait returned") {
			t.Errorf("%s: the wait returned after failing", kind)
		}
	}
}
