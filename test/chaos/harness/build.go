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

package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the programs sidecar replicas run.
type Binaries struct {
	Elector string // cmd/elector
	Actor   string // test/chaos/cmd/actor, the command run while leading
}

// Build compiles cmd/elector (with -race when this program has it) and the
// actor into dir.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := moduleDir(ctx, "github.com/elector-dev/elector")
	if err != nil {
		return Binaries{}, err
	}
	testRoot, err := moduleDir(ctx, "")
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Elector: filepath.Join(dir, "elector"), Actor: filepath.Join(dir, "actor")}
	args := []string{"build", "-o", b.Elector}
	if raceEnabled {
		args = append(args, "-race")
	}
	if err := goCmd(ctx, root, append(args, "./cmd/elector")...); err != nil {
		return Binaries{}, err
	}
	if err := goCmd(ctx, testRoot, "build", "-o", b.Actor, "./chaos/cmd/actor"); err != nil {
		return Binaries{}, err
	}
	return b, nil
}

// moduleDir is the directory of a module of the build (the main module
// for ""); the elector module is the test module's replacement, ../.
func moduleDir(ctx context.Context, module string) (string, error) {
	args := []string{"list", "-m", "-f", "{{.Dir}}"}
	if module != "" {
		args = append(args, module)
	}
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("unable to find module %q (run from the test module): %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return nil
}
