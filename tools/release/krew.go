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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
)

// missingSha marks a platform whose archive --dist does not hold.
const missingSha = "<missing>"

func runKrew(args []string, stdout io.Writer) error {
	fs := newFlags("krew")
	tmpl := fs.String("template", "deploy/krew/elector.yaml", "the krew-release-bot template of the manifest")
	version := fs.String("version", "", "the released version (the template's .TagName)")
	dist := fs.String("dist", "_output/dist", "the directory holding the release archives")
	out := fs.String("out", "", "the manifest to write")
	allowMissing := fs.Bool("allow-missing", false, "leave out the platforms whose archive --dist does not hold (the rehearsal builds only this machine's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkVersion(*version); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"missing --out, the manifest to write"}
	}
	text, err := os.ReadFile(*tmpl)
	if err != nil {
		return fmt.Errorf("unable to read the krew template: %w", err)
	}
	manifest, err := renderKrew(string(text), *version, func(name string) (string, error) {
		f, err := os.Open(filepath.Join(*dist, name))
		if os.IsNotExist(err) && *allowMissing {
			return missingSha, nil
		}
		if err != nil {
			return "", fmt.Errorf("unable to read the archive: %w", err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("unable to hash %s: %w", name, err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	})
	if err != nil {
		return err
	}
	manifest, kept := dropMissing(manifest)
	if kept == 0 {
		return fmt.Errorf("no archive of %s in %s: build them first", *tmpl, *dist)
	}
	if err := os.WriteFile(*out, []byte(manifest), 0o644); err != nil {
		return fmt.Errorf("unable to write %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d platforms\n", *out, kept)
	return nil
}

// renderKrew executes the template as krew-release-bot does:
// {{ .TagName }} is the tag, and {{addURIAndSha URL .TagName}} becomes
// the archive's uri and sha256 (URL is itself a template of the tag).
func renderKrew(text, version string, sha func(archive string) (string, error)) (string, error) {
	data := struct{ TagName string }{version}
	funcs := template.FuncMap{
		"addURIAndSha": func(urlTmpl, tag string) (string, error) {
			t, err := template.New("url").Parse(urlTmpl)
			if err != nil {
				return "", fmt.Errorf("unable to parse the URL %q: %w", urlTmpl, err)
			}
			var u bytes.Buffer
			if err := t.Execute(&u, struct{ TagName string }{tag}); err != nil {
				return "", fmt.Errorf("unable to render the URL %q: %w", urlTmpl, err)
			}
			sum, err := sha(path.Base(u.String()))
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", u.String(), sum), nil
		},
	}
	t, err := template.New("krew").Funcs(funcs).Parse(text)
	if err != nil {
		return "", fmt.Errorf("unable to parse the krew template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("unable to render the krew template: %w", err)
	}
	return b.String(), nil
}

// dropMissing removes the platforms (items "  - selector:" of
// spec.platforms) whose archive is missing and counts the others.
func dropMissing(manifest string) (string, int) {
	lines := strings.SplitAfter(manifest, "\n")
	var out, item []string
	kept, inPlatforms := 0, false
	flush := func() {
		if item == nil {
			return
		}
		if !strings.Contains(strings.Join(item, ""), missingSha) {
			out = append(out, item...)
			kept++
		}
		item = nil
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "  platforms:"):
			inPlatforms = true
			out = append(out, l)
		case inPlatforms && strings.HasPrefix(l, "  - "):
			flush()
			item = []string{l}
		case inPlatforms && (strings.HasPrefix(l, "    ") || strings.TrimSpace(l) == ""):
			item = append(item, l)
		default:
			if inPlatforms {
				flush()
				inPlatforms = false
			}
			out = append(out, l)
		}
	}
	flush()
	return strings.Join(out, ""), kept
}
