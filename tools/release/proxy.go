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

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

func runProxy(args []string, stdout io.Writer) error {
	fs := newFlags("proxy")
	repo := fs.String("repo", ".", "the repository's root")
	version := fs.String("version", "", "the released version, whose tags to serve")
	out := fs.String("out", "", "the proxy's directory (GOPROXY=file://DIR)")
	unchecked := fs.Bool("unchecked", false, "serve nested go.mod files that replace the root too (to watch a user's go get fail)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkVersion(*version); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"missing --out, the proxy's directory"}
	}
	abs, err := filepath.Abs(*repo)
	if err != nil {
		return fmt.Errorf("unable to resolve %s: %w", *repo, err)
	}
	g := git{dir: abs}
	for _, d := range published {
		tag := tagFor(d, *version)
		m := module.Version{Path: modulePath(d), Version: *version}
		gomodPath := "go.mod"
		subdir := ""
		if d != "." {
			gomodPath = d + "/go.mod"
			subdir = d
		}
		gomod, err := g.raw("show", tag+":"+gomodPath)
		if err != nil {
			return fmt.Errorf("unable to read %s at tag %s (run make release-prep VERSION=%s first): %w", gomodPath, tag, *version, err)
		}
		if d != "." && !*unchecked {
			if err := checkReleased(gomodPath, tag, gomod, *version); err != nil {
				return err
			}
		}
		when, err := g.out("log", "-1", "--format=%cI", tag)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339, when)
		if err != nil {
			return fmt.Errorf("unable to parse the commit time of %s: %w", tag, err)
		}
		var zbuf bytes.Buffer
		if err := modzip.CreateFromVCS(&zbuf, m, abs, tag, subdir); err != nil {
			return fmt.Errorf("unable to make the zip of %s from tag %s: %w", m, tag, err)
		}
		esc, err := module.EscapePath(m.Path)
		if err != nil {
			return fmt.Errorf("unable to escape %s: %w", m.Path, err)
		}
		dir := filepath.Join(*out, filepath.FromSlash(esc), "@v")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("unable to create %s: %w", dir, err)
		}
		info, err := json.Marshal(struct {
			Version string
			Time    time.Time
		}{*version, t.UTC()})
		if err != nil {
			return fmt.Errorf("unable to encode the info of %s: %w", m, err)
		}
		files := map[string][]byte{
			*version + ".info": info,
			*version + ".mod":  gomod,
			*version + ".zip":  zbuf.Bytes(),
			"list":             []byte(*version + "\n"),
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return fmt.Errorf("unable to write %s: %w", name, err)
			}
		}
		fmt.Fprintf(stdout, "served %s from tag %s (%d bytes)\n", m, tag, zbuf.Len())
	}
	return nil
}

// checkReleased refuses a tagged nested go.mod that users could not
// resolve: one that replaces the root (Go ignores a dependency's replace,
// and go install pkg@version refuses a module with one) or requires
// another version of it.
func checkReleased(name, tag string, data []byte, version string) error {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return fmt.Errorf("unable to parse %s at %s: %w", name, tag, err)
	}
	var replaces []string
	for _, r := range f.Replace {
		replaces = append(replaces, r.Old.Path+" => "+r.New.Path)
	}
	if len(replaces) > 0 {
		return fmt.Errorf("%s at tag %s has replace directives (%s): users resolving %s ignore them, and go install refuses the module; tag what make release-prep commits", name, tag, strings.Join(replaces, "; "), tag)
	}
	for _, r := range f.Require {
		if r.Mod.Path == rootModule {
			if r.Mod.Version != version {
				return fmt.Errorf("%s at tag %s requires %s %s, not %s: tag what make release-prep commits", name, tag, rootModule, r.Mod.Version, version)
			}
			return nil
		}
	}
	return nil
}
