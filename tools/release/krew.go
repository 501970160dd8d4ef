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

func runKrew(args []string, stdout io.Writer) error {
	fs := newFlags("krew")
	tmpl := fs.String("template", "deploy/krew/elector.yaml", "the krew-release-bot template of the manifest")
	version := fs.String("version", "", "the released version (the template's .TagName)")
	dist := fs.String("dist", "_output/dist", "the directory holding the release archives")
	out := fs.String("out", "", "the manifest to write")
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
		if err != nil {
			// Every platform of the template must be released: a
			// manifest without one would send its users nowhere.
			return "", fmt.Errorf("unable to read the archive of a platform of %s (build every platform's archive into --dist): %w", *tmpl, err)
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
	kept := strings.Count(manifest, "\n    sha256: ")
	if kept == 0 {
		return fmt.Errorf("the template %s names no archive (no addURIAndSha)", *tmpl)
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
