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

// Command bench runs elector's benchmarks against client-go's
// tools/leaderelection on a local control plane and writes BENCHMARKS.md:
//
//	cd bench && go run ./cmd/bench --out ../BENCHMARKS.md     # make bench
//	cd bench && go run ./cmd/bench --quick --out /tmp/b.md    # smoke test
//
// Run it from the bench directory (it builds ../cmd/elector and its own
// helpers with the go command). Ctrl-C stops every process it started and
// the control plane; a second Ctrl-C exits at once (the kernel then kills
// the children).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/elector-dev/elector/bench/internal/suite"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the benchmark could not run, or a scenario failed
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	context.AfterFunc(ctx, stop) // a second signal kills at once
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick   = fs.Bool("quick", false, "smoke test: few trials, short windows, 100 elections at scale (about 4 minutes)")
		out     = fs.String("out", "BENCHMARKS.md", "write the Markdown report here (also printed to stdout); empty: stdout only")
		trials  = fs.Int("trials", 0, "graceful and planned handoff trials per variant (default 30, --quick 5; at least 30 for publication)")
		crashN  = fs.Int("crash-trials", 0, "crash takeover trials per variant (default 10, --quick 3)")
		idle    = fs.Duration("idle", 0, "footprint idle window (default 60s, --quick 15s)")
		window  = fs.Duration("window", 0, "API load and scale counting window (default 30s, --quick 10s)")
		ctrlN   = fs.Int("ctrl-trials", 0, "controller-runtime SIGTERM handoff trials per variant (default 10, --quick 3)")
		scaleN  = fs.Int("scale", 0, "elections in one process for the scale scenario (default 1000, --quick 100)")
		only    = fs.String("only", "", "comma-separated scenarios to run: "+strings.Join(suite.Scenarios, ","))
		flood   = fs.Duration("overload-flood", 0, "overload: each run's flood (default 45s, --quick 15s)")
		oReps   = fs.Int("overload-reps", 0, "overload: runs per variant, with and without the FlowSchema (default 2, --quick 1)")
		oFlows  = fs.Int("overload-flows", 0, "overload: flooding ServiceAccounts (default 48)")
		splice  = fs.Bool("splice", false, "with --only: replace only those scenarios' sections of the existing --out file, keep the rest (supported: "+strings.Join(suite.SectionScenarios(), ",")+")")
		timeout = fs.Duration("timeout", 40*time.Minute, "give up after this long")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: go run ./cmd/bench [flags]   (from the bench directory)")
		fmt.Fprintln(stderr, "Benchmarks elector (library and sidecar) against client-go leaderelection and writes BENCHMARKS.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	opts := suite.Full()
	if *quick {
		opts = suite.Quick()
	}
	for _, f := range []struct {
		name string
		v    int
		dst  *int
	}{{"trials", *trials, &opts.HandoffTrials}, {"crash-trials", *crashN, &opts.CrashTrials}, {"scale", *scaleN, &opts.ScaleN}, {"ctrl-trials", *ctrlN, &opts.CtrlTrials}, {"overload-reps", *oReps, &opts.OverloadReps}, {"overload-flows", *oFlows, &opts.OverloadFlows}} {
		switch {
		case f.v < 0:
			fmt.Fprintf(stderr, "bench: --%s=%d: must be positive\n", f.name, f.v)
			return exitUsage
		case f.v > 0:
			*f.dst = f.v
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
		dst  *time.Duration
	}{{"idle", *idle, &opts.Idle}, {"window", *window, &opts.LoadWindow}, {"window", *window, &opts.ScaleWindow}, {"overload-flood", *flood, &opts.OverloadFlood}} {
		switch {
		case f.v < 0:
			fmt.Fprintf(stderr, "bench: --%s=%v: must be positive\n", f.name, f.v)
			return exitUsage
		case f.v > 0:
			*f.dst = f.v
		}
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			if !contains(suite.Scenarios, s) {
				fmt.Fprintf(stderr, "bench: --only: unknown scenario %q; use %s\n", s, strings.Join(suite.Scenarios, ","))
				return exitUsage
			}
			opts.Only = append(opts.Only, s)
		}
	}
	var existing []byte
	if *splice {
		if len(opts.Only) == 0 || *out == "" {
			fmt.Fprintln(stderr, "bench: --splice needs --only and --out: it replaces those scenarios' sections of the --out file")
			return exitUsage
		}
		for _, s := range opts.Only {
			if !contains(suite.SectionScenarios(), s) {
				fmt.Fprintf(stderr, "bench: --splice: scenario %q has no section of its own to replace; use %s, or splice by hand\n", s, strings.Join(suite.SectionScenarios(), ","))
				return exitUsage
			}
		}
		var err error
		if existing, err = os.ReadFile(*out); err != nil {
			fmt.Fprintf(stderr, "bench: --splice: unable to read the report to update: %v\n", err)
			return exitUsage
		}
	}
	opts.Command = commandLine(args)

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	report, failed, err := suite.Run(ctx, opts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	fmt.Fprint(stdout, report)
	if *splice {
		if report, err = suite.SpliceSections(string(existing), report, opts.Only); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return exitFailure
		}
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintf(stderr, "bench: unable to write the report: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", *out)
	}
	if failed {
		fmt.Fprintln(stderr, "bench: some scenarios failed; see the report")
		return exitFailure
	}
	return exitOK
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// commandLine is how the report names the run: `make bench` for the
// default, else the go run command with its flags (without --out).
func commandLine(args []string) string {
	var kept []string
	splice := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--splice" || a == "-splice" {
			splice = true
			continue
		}
		if a == "--out" || a == "-out" {
			i++
			continue
		}
		if strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out=") {
			continue
		}
		kept = append(kept, a)
	}
	target := "make bench"
	if splice {
		// make bench-overload is bench --only overload --splice.
		for i, a := range kept {
			if a == "--only=overload" || a == "-only=overload" {
				kept, target = slices.Delete(kept, i, i+1), "make bench-overload"
				break
			}
			if (a == "--only" || a == "-only") && i+1 < len(kept) && kept[i+1] == "overload" {
				kept, target = slices.Delete(kept, i, i+2), "make bench-overload"
				break
			}
		}
	}
	if len(kept) == 0 {
		return target
	}
	return target + " BENCHFLAGS='" + strings.Join(kept, " ") + "'"
}
