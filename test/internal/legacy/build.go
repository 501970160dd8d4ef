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

package legacy

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/elector-dev/elector/test/internal/proc"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// ModulePath is the module of the stand-in.
const ModulePath = "github.com/elector-dev/elector/test/leaderelector05"

// ModuleDir returns the directory of the stand-in's module,
// test/leaderelector05 in the repository (see [sidecar.RepoDir]).
func ModuleDir() (string, error) {
	root, err := sidecar.RepoDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "test", "leaderelector05")
	if err := checkModule(dir); err != nil {
		return "", fmt.Errorf("unable to find the stand-in of leader-elector:0.5: %w", err)
	}
	return dir, nil
}

func checkModule(dir string) error {
	got, err := proc.ModuleOf(dir)
	if err != nil {
		return err
	}
	if got != ModulePath {
		return fmt.Errorf("%s/go.mod is module %s, not %s", dir, got, ModulePath)
	}
	return nil
}

// Build compiles the stand-in into dir/leaderelector05 and returns the
// binary's path. It runs `go build` in the stand-in's module, on its own
// go.mod and go.sum (GOWORK=off), so Go's build cache serves every build
// after the first (which compiles client-go v0.23.16: about two minutes
// on two cores).
//
// It builds without -race even when the tests have it: the stand-in is a
// reproduction of old software observed by the tests, not code under
// test, and the race runtime would make its first build slower and its
// renewals late. Its own tests run with -race in its module.
func Build(ctx context.Context, dir string) (string, error) {
	module, err := ModuleDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "leaderelector05")
	args := []string{"build", "-buildvcs=false", "-o", out, "."}
	if err := proc.GoBuild(ctx, "the stand-in of leader-elector:0.5", module, args...); err != nil {
		return "", err
	}
	return out, nil
}
