package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is the module of the library and the sidecar.
const modulePath = "github.com/elector-dev/elector"

// RepoDir returns the root of the repository: the directory of the
// github.com/elector-dev/elector module, found from the working directory
// upwards (go test runs in the package directory, go run in the caller's).
func RepoDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("unable to find the repository: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isRoot(dir) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("unable to find the repository: no go.mod of module %s in %s or its parents", modulePath, wd)
		}
	}
}

func isRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == modulePath
		}
	}
	return false
}

// DeployDir returns the directory of the kustomize manifests, deploy/.
func DeployDir() (string, error) {
	root, err := RepoDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy"), nil
}

// Build compiles cmd/elector into dir/elector, with -race when this
// program has it, and returns the binary's path. It runs `go build` in the
// repository root, as a user would.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := RepoDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "elector")
	args := []string{"build", "-o", out}
	if RaceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/elector")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	// The root module builds on its own; a go.work of the caller must not
	// change its dependency graph.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("unable to build elector: %w", ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("unable to build elector (go %s in %s): %w\n%s", strings.Join(args, " "), root, err, output.String())
		}
		return "", fmt.Errorf("unable to build elector: %w", err)
	}
	return out, nil
}
