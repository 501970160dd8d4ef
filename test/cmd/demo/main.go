// Command demo starts the test control plane and shows that it is ready.
// It is a placeholder for a demonstration of elector replicas.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/elector-dev/elector/test/controlplane"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, stdout, stderr io.Writer) int {
	cp, err := controlplane.Start(ctx, controlplane.Options{Out: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "kubeconfig: %s\n", cp.Kubeconfig())
	fmt.Fprintf(stdout, "control plane ready at %s\n", cp.URL())
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}
