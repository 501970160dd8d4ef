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

package elector_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
)

// quiet keeps example output to what the examples print.
var quiet = slog.New(slog.DiscardHandler)

// The function passed to Run works only while this replica leads. Here the
// in-memory fake stands in for a cluster; in production pass
// clientset.CoordinationV1().Leases("team-a").
func Example() {
	leases := fake.NewLeases() // in production: clientset.CoordinationV1()
	e, err := elector.New(elector.Config{
		Leases:    leases.Leases("team-a"),
		Namespace: "team-a",
		Name:      "my-controller",
		Identity:  "pod-1",
		Logger:    quiet,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = e.Run(context.Background(), func(ctx context.Context, term elector.Term) error {
		fmt.Printf("%s leads with token %d\n", term.Identity, term.Token)
		return nil // work done: Run releases the Lease and returns
	})
	fmt.Println("Run returned:", err)
	// Output:
	// pod-1 leads with token 0
	// Run returned: <nil>
}

// store is a downstream system that accepts a write only with a fencing
// token at least as high as any it has seen, so a deposed leader that
// still believes it leads (after a long pause, say) cannot overwrite the
// work of its successor.
type store struct {
	mu      sync.Mutex
	highest elector.Token
	value   string
}

var errStaleToken = errors.New("store: stale fencing token")

func (s *store) Write(token elector.Token, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.highest {
		return fmt.Errorf("%w: %d < %d", errStaleToken, token, s.highest)
	}
	s.highest, s.value = token, v
	return nil
}

// Fence every write to a shared store with the tenure's token. The store
// compares tokens; the election alone cannot stop a paused process.
func Example_fencing() {
	leases := fake.NewLeases()
	db := &store{}
	run := func(id string) elector.Token {
		e, _ := elector.New(elector.Config{Leases: leases.Leases("team-a"), Namespace: "team-a", Name: "writer", Identity: id, Logger: quiet})
		var token elector.Token
		_ = e.Run(context.Background(), func(ctx context.Context, term elector.Term) error {
			token = term.Token
			return db.Write(term.Token, "written by "+id)
		})
		return token
	}
	old := run("pod-1") // token 0
	run("pod-2")        // token 1

	// pod-1 wakes up from a long pause and still holds its old token.
	err := db.Write(old, "late write by pod-1")
	fmt.Println(err)
	fmt.Println(db.value)
	// Output:
	// store: stale fencing token: 0 < 1
	// written by pod-2
}

// Subscribe follows the leader without campaigning logic of your own.
func ExampleElector_Subscribe() {
	leases := fake.NewLeases()
	e, _ := elector.New(elector.Config{Leases: leases.Leases("team-a"), Namespace: "team-a", Name: "lock", Identity: "pod-1", Logger: quiet})
	// The subscription ends with ctx: bounded, the example cannot hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	changes := e.Subscribe(ctx)
	fmt.Printf("before: %q\n", (<-changes).Identity)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, func(ctx context.Context, _ elector.Term) error {
			<-ctx.Done()
			return nil
		})
	}()
	for v := range changes {
		if v.Self {
			fmt.Printf("now: %q leads (self=%v)\n", v.Identity, v.Self)
			break
		}
	}
	cancel()
	<-done
	// Output:
	// before: ""
	// now: "pod-1" leads (self=true)
}
