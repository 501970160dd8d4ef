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
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// rootModule is the library's module path; every published module's tag
// is its directory, a slash and the version (the root's is the version).
const rootModule = "github.com/elector-dev/elector"

// repoURL is where the CHANGELOG's compare links point.
const repoURL = "https://github.com/" + "elector-dev/elector"

// published are the directories of the modules users resolve, the root
// first. The others (test, bench, tools/...) are the repository's own
// and are neither tagged nor rewritten.
var published = []string{".", "ctrl", "cmd/kubectl-elector"}

// tagFor is the tag of the module in dir at version.
func tagFor(dir, version string) string {
	if dir == "." {
		return version
	}
	return dir + "/" + version
}

// modulePath is the module path of the published module in dir.
func modulePath(dir string) string {
	if dir == "." {
		return rootModule
	}
	return rootModule + "/" + dir
}

func runPrep(args []string, stdout io.Writer) error {
	fs := newFlags("prep")
	repo := fs.String("repo", ".", "the repository's root")
	version := fs.String("version", "", "the version to release, vMAJOR.MINOR.PATCH")
	date := fs.String("date", time.Now().UTC().Format(time.DateOnly), "the release date in CHANGELOG.md")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkVersion(*version); err != nil {
		return err
	}
	g := git{dir: *repo}
	if out, err := g.out("status", "--porcelain"); err != nil {
		return err
	} else if out != "" {
		return fmt.Errorf("the working tree of %s has uncommitted changes; commit or stash them first:\n%s", *repo, out)
	}
	for _, d := range published {
		if _, err := g.out("rev-parse", "-q", "--verify", "refs/tags/"+tagFor(d, *version)); err == nil {
			return fmt.Errorf("tag %s exists already; pick the next version", tagFor(d, *version))
		}
	}

	// 1. The release commit: CHANGELOG stamped, nested modules on the
	// released root without replace.
	clPath := filepath.Join(*repo, "CHANGELOG.md")
	cl, err := os.ReadFile(clPath)
	if err != nil {
		return fmt.Errorf("unable to read CHANGELOG.md: %w", err)
	}
	stamped, err := stampChangelog(string(cl), *version, *date)
	if err != nil {
		return err
	}
	if err := os.WriteFile(clPath, []byte(stamped), 0o644); err != nil {
		return fmt.Errorf("unable to write CHANGELOG.md: %w", err)
	}
	nested := published[1:]
	for _, d := range nested {
		if err := editGoMod(filepath.Join(*repo, d, "go.mod"), func(f *modfile.File) error { return releaseRequire(f, *version) }); err != nil {
			return err
		}
	}
	if err := g.run("add", "-A"); err != nil {
		return err
	}
	msg := fmt.Sprintf("Release %s\n\nCHANGELOG.md stamped; %s require %s %s with no replace directive.", *version, strings.Join(nested, " and "), rootModule, *version)
	if err := g.run("commit", "-q", "-m", msg); err != nil {
		return err
	}

	// 2. go.sum lines for the root at the version, from the commit's
	// tree: its module zip does not contain the nested modules, so
	// amending their go.sum does not change it.
	commit, err := g.out("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	sums, err := rootSums(*repo, commit, *version)
	if err != nil {
		return err
	}
	for _, d := range nested {
		if err := addSums(filepath.Join(*repo, d, "go.sum"), sums); err != nil {
			return err
		}
	}
	if err := g.run("add", "-A"); err != nil {
		return err
	}
	if err := g.run("commit", "-q", "--amend", "--no-edit"); err != nil {
		return err
	}
	release, err := g.out("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if again, err := rootSums(*repo, release, *version); err != nil {
		return err
	} else if !slices.Equal(again, sums) {
		return fmt.Errorf("the root module's hash changed when the nested go.sum files were amended (%v, then %v); is a nested module missing from its go.mod?", sums, again)
	}

	// 3. The tags, all on the release commit.
	for _, d := range published {
		tag := tagFor(d, *version)
		if err := g.run("tag", "-a", "-m", modulePath(d)+" "+*version, tag, release); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tagged %s at %s\n", tag, release[:12])
	}

	// 4. Back to development: the nested modules build against the root
	// in this tree again.
	for _, d := range nested {
		rel := relRoot(d)
		if err := editGoMod(filepath.Join(*repo, d, "go.mod"), func(f *modfile.File) error {
			return f.AddReplace(rootModule, "", rel, "")
		}); err != nil {
			return err
		}
		if err := dropSums(filepath.Join(*repo, d, "go.sum"), rootModule); err != nil {
			return err
		}
	}
	if err := g.run("add", "-A"); err != nil {
		return err
	}
	msg = fmt.Sprintf("Back to development after %s\n\n%s build against the root module in this tree again (replace); users resolve the tagged go.mod files, which have none.", *version, strings.Join(nested, " and "))
	if err := g.run("commit", "-q", "-m", msg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "released %s at %s; push the branch and the tags: git push origin HEAD %s\n", *version, release[:12], strings.Join(tagsFor(*version), " "))
	return nil
}

func tagsFor(version string) []string {
	var tags []string
	for _, d := range published {
		tags = append(tags, tagFor(d, version))
	}
	return tags
}

func checkVersion(v string) error {
	if v == "" {
		return usageError{"missing --version (e.g. --version=v0.1.0)"}
	}
	if !semver.IsValid(v) || semver.Canonical(v) != v || semver.Build(v) != "" {
		return usageError{fmt.Sprintf("--version=%s is not a release version: use vMAJOR.MINOR.PATCH, e.g. v0.1.0 or v0.2.0-rc.1", v)}
	}
	return nil
}

// relRoot is the relative path from the module in dir to the root.
func relRoot(dir string) string {
	n := strings.Count(path.Clean(dir), "/") + 1
	return strings.TrimSuffix(strings.Repeat("../", n), "/")
}

// releaseRequire drops the replace of the root and requires it at version.
func releaseRequire(f *modfile.File, version string) error {
	for _, r := range f.Replace {
		if r.Old.Path == rootModule {
			if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return fmt.Errorf("unable to drop the replace of %s: %w", rootModule, err)
			}
		}
	}
	if err := f.AddRequire(rootModule, version); err != nil {
		return fmt.Errorf("unable to require %s %s: %w", rootModule, version, err)
	}
	return nil
}

func editGoMod(file string, edit func(*modfile.File) error) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("unable to read %s: %w", file, err)
	}
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return fmt.Errorf("unable to parse %s: %w", file, err)
	}
	if err := edit(f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return fmt.Errorf("unable to format %s: %w", file, err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return fmt.Errorf("unable to write %s: %w", file, err)
	}
	return nil
}

// rootSums are the two go.sum lines of the root module at version, made
// from the tree of commit as the module mirror would make them.
func rootSums(repo, commit, version string) ([]string, error) {
	m := module.Version{Path: rootModule, Version: version}
	var zbuf bytes.Buffer
	abs, err := filepath.Abs(repo)
	if err != nil {
		return nil, fmt.Errorf("unable to resolve %s: %w", repo, err)
	}
	if err := modzip.CreateFromVCS(&zbuf, m, abs, commit, ""); err != nil {
		return nil, fmt.Errorf("unable to make the zip of %s: %w", m, err)
	}
	zipHash, err := hashZipBytes(zbuf.Bytes())
	if err != nil {
		return nil, err
	}
	gomod, err := (git{dir: repo}).raw("show", commit+":go.mod")
	if err != nil {
		return nil, err
	}
	modHash, err := hashGoMod(gomod)
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("%s %s %s", rootModule, version, zipHash),
		fmt.Sprintf("%s %s/go.mod %s", rootModule, version, modHash),
	}, nil
}

func hashZipBytes(b []byte) (string, error) {
	f, err := os.CreateTemp("", "release-*.zip")
	if err != nil {
		return "", fmt.Errorf("unable to hash the module zip: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", fmt.Errorf("unable to hash the module zip: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("unable to hash the module zip: %w", err)
	}
	h, err := dirhash.HashZip(f.Name(), dirhash.Hash1)
	if err != nil {
		return "", fmt.Errorf("unable to hash the module zip: %w", err)
	}
	return h, nil
}

// hashGoMod is the go.sum hash of a go.mod file ("/go.mod h1:...").
func hashGoMod(data []byte) (string, error) {
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return "", fmt.Errorf("unable to hash go.mod: %w", err)
	}
	return h, nil
}

// addSums adds lines of one module to a go.sum file where the go command
// keeps them: after the modules whose path sorts before theirs. The other
// lines keep their order (go.sum sorts versions as semver, not as text).
func addSums(file string, lines []string) error {
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("unable to read %s: %w", file, err)
	}
	all := strings.Split(strings.TrimSpace(string(data)), "\n")
	all = slices.DeleteFunc(all, func(s string) bool { return s == "" || slices.Contains(lines, s) })
	mod := strings.Fields(lines[0])[0]
	at := len(all)
	for i, l := range all {
		if f := strings.Fields(l); len(f) > 0 && f[0] > mod {
			at = i
			break
		}
	}
	all = slices.Insert(all, at, lines...)
	if err := os.WriteFile(file, []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("unable to write %s: %w", file, err)
	}
	return nil
}

// dropSums removes the lines of module mod from a go.sum file.
func dropSums(file, mod string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("unable to read %s: %w", file, err)
	}
	var keep []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] != mod {
			keep = append(keep, l)
		}
	}
	if err := os.WriteFile(file, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("unable to write %s: %w", file, err)
	}
	return nil
}

var (
	unreleasedHeading = regexp.MustCompile(`(?m)^## \[Unreleased\][^\n]*$`)
	releaseHeading    = regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\]`)
	linkLine          = regexp.MustCompile(`(?m)^\[([^\]]+)\]: .*$`)
)

// stampChangelog turns the Unreleased section into the version's section
// (keep-a-changelog), opens a new empty Unreleased section above it and
// writes the compare links.
func stampChangelog(cl, version, date string) (string, error) {
	bare := strings.TrimPrefix(version, "v")
	loc := unreleasedHeading.FindStringIndex(cl)
	if loc == nil {
		return "", fmt.Errorf("CHANGELOG.md has no \"## [Unreleased]\" section to release")
	}
	for _, m := range releaseHeading.FindAllStringSubmatch(cl, -1) {
		if len(m) > 1 && m[1] == bare {
			return "", fmt.Errorf("CHANGELOG.md has a section for %s already", bare)
		}
	}
	next := cl[loc[1]:]
	end := releaseHeading.FindStringIndex(next)
	body := next
	if end != nil {
		body = next[:end[0]]
	}
	if strings.TrimSpace(linkLine.ReplaceAllString(body, "")) == "" {
		return "", fmt.Errorf("the Unreleased section of CHANGELOG.md is empty: say what %s changes first", version)
	}
	var previous string
	if m := releaseHeading.FindStringSubmatch(cl); m != nil {
		previous = "v" + m[1]
	}
	out := cl[:loc[0]] + "## [Unreleased]\n\n## [" + bare + "] - " + date + cl[loc[1]:]

	// The links at the end: Unreleased compares with this version, this
	// version with the previous one (or is the first tag); older links
	// stay below them.
	var kept []string
	for l := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(l, "[Unreleased]: ") {
			kept = append(kept, l)
		}
	}
	out = strings.Join(kept, "\n")
	links := "[Unreleased]: " + repoURL + "/compare/" + version + "...HEAD\n"
	if previous != "" {
		links += "[" + bare + "]: " + repoURL + "/compare/" + previous + "..." + version + "\n"
	} else {
		links += "[" + bare + "]: " + repoURL + "/releases/tag/" + version + "\n"
	}
	if idx := linkLine.FindStringIndex(out); idx != nil {
		return out[:idx[0]] + links + out[idx[0]:], nil
	}
	return strings.TrimRight(out, "\n") + "\n\n" + links, nil
}

// git runs git in a repository.
type git struct{ dir string }

func (g git) run(args ...string) error {
	_, err := g.out(args...)
	return err
}

func (g git) out(args ...string) (string, error) {
	out, err := g.raw(args...)
	return strings.TrimRight(string(out), "\n"), err
}

func (g git) raw(args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("unable to run git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
