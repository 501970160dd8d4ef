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

// Package migrate lets a program move from an old annotation lock — the
// Endpoints lock of k8s.gcr.io/leader-elector:0.5 and of client-go's
// "endpoints" resource lock, or client-go's "configmaps" lock — to an
// elector Lease with a normal rolling update and never two leaders.
//
// Kubernetes met the same problem when its components moved from
// Endpoints to Leases, and solved it with two locks held together
// (client-go's MultiLock). Here the Lease is elector's, with all its
// guarantees, and the old lock is taken inside each tenure:
//
//	old := &migrate.Lock{Client: migrate.REST(clientset.CoreV1().RESTClient()), Kind: migrate.Endpoints,
//		Namespace: "default", Name: "my-app", Identity: podName}
//	err := e.Run(ctx, old.Guard(work))
//
// Guard waits until the old lock is free or expired — judged as its old
// holders judge it, on this process's clock from the moment the record was
// seen to change, never by comparing another host's timestamps — takes
// it, runs work while renewing it, cancels work when the renewals stop
// succeeding or another holder appears, and releases it after work has
// returned (an empty holder: client-go's endpoints and configmaps locks
// take it at their next poll; the 0.5 image, whose 2016 code treats an
// empty holder like any other, one lease later). So the work runs only
// while this replica holds both locks. The release happens after the
// guarded function has returned to the Elector, bounded by APITimeout on
// its own, so a slow or hanging API server cannot use up the StopGrace
// the Elector gives the work (the tenure ends when the work returns);
// Lock.Wait waits for it, the next tenure of the same Lock too. Renewals
// run beside the loop that waits for the work, so a renewal the API server
// does not answer does not delay noticing the return either
// (TestGuardNoticesTheWorkReturnWhileARenewalHangs).
//
// # What old candidates require
//
// Old candidates poll the lock every RetryPeriod of theirs and judge
// expiry with their own lease duration (the 0.5 image's --ttl), not with
// the record's. Guard renews the record every RetryPeriod, but at most
// once a second (the record stores whole seconds), and changes it on
// every renewal, and cancels work at RenewDeadline −
// StopGrace after its last successful write, with StopGrace to return:
// safe as long as the old candidates' lease duration is longer than
// RenewDeadline by the clock-rate margin, i.e. run elector with a lease
// duration (the sidecar's --ttl) no longer than the old candidates'.
//
// # Leaving migration
//
// Once no old candidate runs, roll out again without Guard: elector's
// Lease alone then decides. A new candidate that does not take the old
// lock can never overlap an old one, because it leads only while holding
// the Lease, and every candidate that holds the Lease also held the old
// lock while old candidates could run.
package migrate
