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

// Command kubectl-elector is a kubectl plugin for leader elections on
// coordination.k8s.io/v1 Leases: elector's, client-go's and any other
// that writes the same record. Installed on $PATH (or with krew), it runs
// as `kubectl elector`:
//
//	kubectl elector list [-A] [-o wide|json|yaml|name]  every election, its holder and state
//	kubectl elector status NAME                         one Lease in detail, with its recent holders
//	kubectl elector watch [NAME|GROUP] [-A]             changes as they happen, with gaps and anomalies
//	kubectl elector handoff NAME [--to ID] [--force]    move leadership on purpose, in milliseconds
//	kubectl elector why NAME --for SUBJECT              may that ServiceAccount run elector for NAME?
//	kubectl elector shards [GROUP]                      a sharded group's members and every shard's owner
//	kubectl elector version                             the plugin's version (also --version)
//
// The listing commands (list, shards) take kubectl's output flags: -o
// wide|json|yaml|name, --no-headers and -l; watch takes -l. A sharded
// group (package shard) is one entry in list and watch, not one per Lease.
// handoff refuses a target that no Ready Pod shows running, and a handoff
// to anyone else when no other Ready Pod of the holder's workload is
// there; --force asks anyway.
//
// It takes kubectl's connection flags (--kubeconfig, --context, -n,
// --as and the rest, from k8s.io/cli-runtime) and finds credentials in
// kubectl's order: --kubeconfig, $KUBECONFIG, ~/.kube/config, then the
// Pod's ServiceAccount; with none it exits 3. See docs/kubectl-elector.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, the same for every command (docs/kubectl-elector.md).
const (
	// ExitOK: done; for why, the subject has every permission.
	ExitOK = 0
	// ExitFailure: an unexpected error from the API server, printed.
	ExitFailure = 1
	// ExitUsage: bad command line: unknown command or flag, missing or
	// stray argument, bad flag value.
	ExitUsage = 2
	// ExitConfig: there is no kubeconfig at all, or it (or --context,
	// --cluster, --user) cannot be loaded.
	ExitConfig = 3
	// ExitForbidden: the operator lacks a permission; the Role and
	// RoleBinding that grant it are printed.
	ExitForbidden = 4
	// ExitUnreachable: the API server did not answer, or rejected the
	// credentials (401).
	ExitUnreachable = 5
	// ExitNotFound: the Lease does not exist.
	ExitNotFound = 6
	// ExitCannotHandOff: handoff refused before asking: the Lease has no
	// live holder, or its holder does not act on handoff requests (a
	// client-go candidate, or an elector older than handoffs), or no Ready
	// Pod shows that the target (or another candidate) is running.
	ExitCannotHandOff = 7
	// ExitTimeout: handoff asked, but no new holder within --timeout (the
	// request is withdrawn); or the Lease moved elsewhere than asked.
	ExitTimeout = 8
	// ExitMissing: why found permissions the subject lacks; the Role and
	// RoleBinding that grant them are printed.
	ExitMissing = 9
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
