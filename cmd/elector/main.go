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

// Command elector is a leader-election sidecar on a coordination.k8s.io/v1
// Lease, and a drop-in successor of k8s.gcr.io/leader-elector:0.5: the
// same flags (--election, --election-namespace, --http, --id, --ttl,
// --use-cluster-credentials) and the same {"name":"<leader>"} answer on
// --http.
//
// It adds: health, readiness, metrics and Server-Sent Events endpoints; a
// label on the leader's Pod (--leader-label) for a Service that routes to
// the leader only; Events on the Lease; release of the Lease on SIGTERM;
// a permission check that prints the exact Role to grant; and exec mode,
// `elector [flags] -- COMMAND [ARGS...]`, which runs COMMAND only while
// this replica leads, guarded by a watchdog process (see watchdog.go).
//
// Run `elector -h` for flags, endpoints and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes. In exec mode a command that exits by itself passes its own
// code through, which may coincide with these.
const (
	// ExitOK: shut down by SIGTERM/SIGINT after releasing the Lease; or -h,
	// --version; or the command exited with 0.
	ExitOK = 0
	// ExitFailure: an unexpected runtime error, logged.
	ExitFailure = 1
	// ExitUsage: bad command line: unknown flag, missing --election or
	// flag value, stray argument, nothing after --.
	ExitUsage = 2
	// ExitConfig: a flag or environment value is invalid (durations, names,
	// label syntax, listen address, command not found, kubeconfig).
	ExitConfig = 3
	// ExitForbidden: RBAC permissions are missing at start, still after
	// re-checking them for 15 seconds (a kube-apiserver that has just
	// started denies while its caches fill); the Role and RoleBinding to
	// grant are printed on stderr. A permission lost at runtime is not an
	// exit: it is retried, and /leader and the log name the fix.
	ExitForbidden = 4
	// ExitUnreachable: there are no credentials at all, or the API server
	// rejected them (401, still after 15 seconds of re-checks). An API
	// server that cannot be reached is waited for, not an exit.
	ExitUnreachable = 5
	// ExitLost: in exec mode, leadership was lost and the command was
	// stopped (also when the watchdog had to kill it). Without a command
	// elector never exits on a loss: it keeps serving and campaigns again,
	// because restarting the sidecar would only blank its HTTP answers.
	// With a command, the command's own exit code after our SIGTERM would
	// say nothing, and a restart gives it a clean start.
	ExitLost = 6
	// ExitOverrun: leader work did not stop before the renew deadline
	// (elector.ErrStopOverrun); mutual exclusion can no longer be promised.
	ExitOverrun = 7
)

func main() {
	tuneGC(os.Getenv)
	if len(os.Args) > 1 && os.Args[1] == watchdogCommand {
		os.Exit(watchdogMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	// elector is the container's entrypoint, possibly PID 1: it handles
	// SIGTERM and SIGINT itself (PID 1 gets no default action). After the
	// first signal the handlers are removed, so that outside a container a
	// second ^C ends elector at once; the watchdog then sees EOF and kills
	// the command.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is elector without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, osEnvironment())
}

// runWith is run with the environment and, for tests, options applied to
// the app before it runs.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, env environment, opts ...func(*app)) int {
	c, err := parseConfig(args, env)
	switch {
	case errors.Is(err, errHelp):
		usage(stdout)
		return ExitOK
	case errors.Is(err, errVersion):
		fmt.Fprintln(stdout, "elector", currentVersion())
		return ExitOK
	case err != nil:
		return fail(stderr, err)
	}
	a := &app{cfg: c, log: newLogger(stderr, c.logFormat, c.logLevel), stdout: stdout, stderr: stderr}
	for _, o := range opts {
		o(a)
	}
	return a.run(ctx)
}

// fail prints err as one line and returns its exit code.
func fail(stderr io.Writer, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, ue.Error())
		return ue.code
	}
	fmt.Fprintln(stderr, "elector: "+oneLine(err))
	return ExitFailure
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
