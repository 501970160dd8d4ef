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

package migrate_test

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/elector-dev/elector"
	electorfake "github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/migrate"
)

// A program that used client-go's "endpoints" resource lock (or ran next
// to leader-elector:0.5) moves to an elector Lease: during the rolling
// update it holds both, so old and new replicas never lead at once. The
// fakes stand in for a cluster; in production pass
// migrate.REST(clientset.CoreV1().RESTClient()) and
// clientset.CoordinationV1().Leases(namespace).
func ExampleLock_Guard() {
	quiet := slog.New(slog.DiscardHandler)
	core := fake.NewClientset().CoreV1()
	e, err := elector.New(elector.Config{
		Leases: electorfake.NewLeases().Leases("team-a"), Namespace: "team-a", Name: "my-app", Identity: "pod-1", Logger: quiet,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	old := &migrate.Lock{
		Client: typedObjects{core}, Kind: migrate.Endpoints, Namespace: "team-a", Name: "my-app", Identity: "pod-1", Logger: quiet,
	}
	err = e.Run(context.Background(), old.Guard(func(ctx context.Context, term elector.Term) error {
		fmt.Printf("leading with the Lease and the old lock; old lock held by %s\n", old.Holder())
		return nil // done: the Lease is released, and the old lock in the background
	}))
	_ = old.Wait(context.Background()) // the old lock's release, bounded by its APITimeout
	fmt.Println("Run:", err, "; old lock held by", fmt.Sprintf("%q", old.Holder()))
	// Output:
	// leading with the Lease and the old lock; old lock held by pod-1
	// Run: <nil> ; old lock held by ""
}
