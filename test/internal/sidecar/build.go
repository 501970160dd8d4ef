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

package sidecar

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/elector-dev/elector/test/internal/proc"
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
	m, err := proc.ModuleOf(dir)
	return err == nil && m == modulePath
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
	return BuildMain(ctx, "elector", ".", "./cmd/elector", filepath.Join(dir, "elector"))
}

// BuildMain compiles the main package pkg of the module in moduleDir
// (relative to the repository root) into out, with -race when this
// program has it, and returns out. It runs `go build` in that module, as a
// user of the module would: a go.work of the caller must not change its
// dependency graph (proc.GoBuild sets GOWORK=off).
func BuildMain(ctx context.Context, what, moduleDir, pkg, out string) (string, error) {
	root, err := RepoDir()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if RaceEnabled {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	if err := proc.GoBuild(ctx, what, filepath.Join(root, moduleDir), args...); err != nil {
		return "", err
	}
	return out, nil
}
