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

package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var unixEpoch = time.Unix(0, 0).UTC()

// fakeBinaries writes one small file per platform, different per
// platform, in place of compiled binaries.
func fakeBinaries(t *testing.T) []Binary {
	t.Helper()
	dir := t.TempDir()
	var bins []Binary
	for _, p := range Platforms {
		path := filepath.Join(dir, p.Architecture)
		if err := os.WriteFile(path, []byte("#!elector for "+p.Architecture), 0o600); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, Binary{Platform: p, Path: path})
	}
	return bins
}

var testMeta = Meta{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Created: time.Unix(1700000000, 0).UTC()}

func digest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAssembleIsReproducible(t *testing.T) {
	bins := fakeBinaries(t)
	a, err := Assemble(bins, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Assemble(bins, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, a) != digest(t, b) {
		t.Errorf("two assemblies of the same binaries: %s and %s", digest(t, a), digest(t, b))
	}
	// Each input shows in the digest.
	later := testMeta
	later.Created = later.Created.Add(time.Second)
	other := testMeta
	other.Commit = "fedcba"
	for name, m := range map[string]Meta{"created": later, "commit": other} {
		c, err := Assemble(bins, m)
		if err != nil {
			t.Fatal(err)
		}
		if digest(t, c) == digest(t, a) {
			t.Errorf("another %s gives the same digest %s", name, digest(t, a))
		}
	}
}

func TestAssembleImage(t *testing.T) {
	bins := fakeBinaries(t)
	idx, err := Assemble(bins, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", mt, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(Platforms) {
		t.Fatalf("%d manifests, want %d", len(im.Manifests), len(Platforms))
	}
	for i, desc := range im.Manifests {
		p := Platforms[i]
		if desc.Platform == nil || !desc.Platform.Equals(p) {
			t.Errorf("manifest %d: platform %v, want %v", i, desc.Platform, p)
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != p.OS || cf.Architecture != p.Architecture {
			t.Errorf("%s: config platform %s/%s", p.Architecture, cf.OS, cf.Architecture)
		}
		if !cf.Created.Equal(testMeta.Created) {
			t.Errorf("%s: created %s, want %s", p.Architecture, cf.Created, testMeta.Created)
		}
		if !slices.Equal(cf.Config.Entrypoint, []string{Entrypoint}) || cf.Config.User != User {
			t.Errorf("%s: entrypoint %q user %q, want [%s] %s", p.Architecture, cf.Config.Entrypoint, cf.Config.User, Entrypoint, User)
		}
		if len(cf.Config.Env) != 0 || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: env %q cmd %q, want none", p.Architecture, cf.Config.Env, cf.Config.Cmd)
		}
		want := map[string]string{
			LabelSource: Source, LabelVersion: "v1.2.3", LabelRevision: testMeta.Commit,
			LabelLicenses: "Apache-2.0", LabelCreated: "2023-11-14T22:13:20Z",
			LabelTitle: "elector", LabelDescription: Description,
		}
		if len(cf.Config.Labels) != len(want) {
			t.Errorf("%s: labels %v, want %v", p.Architecture, cf.Config.Labels, want)
		}
		for k, v := range want {
			if cf.Config.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", p.Architecture, k, cf.Config.Labels[k], v)
			}
		}
		for _, h := range cf.History {
			if !h.Created.Equal(testMeta.Created) {
				t.Errorf("%s: history created %s, want %s", p.Architecture, h.Created, testMeta.Created)
			}
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%s: %d layers, want 1", p.Architecture, len(layers))
		}
		if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
			t.Errorf("%s: layer media type %s, want %s", p.Architecture, mt, types.OCILayer)
		}
		checkLayer(t, layers[0], "#!elector for "+p.Architecture)
	}
}

// checkLayer checks that the layer holds the binary alone, root-owned,
// executable, with the source date.
func checkLayer(t *testing.T, l v1.Layer, content string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if "/"+hdr.Name != Entrypoint || hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(testMeta.Created) {
		t.Errorf("layer entry %s type %c mode %o uid %d gid %d mtime %s, want %s regular 755 0 0 %s",
			hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime, Entrypoint, testMeta.Created)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("layer content %q, want %q", b, content)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("the layer has more than one entry (%v)", err)
	}
}

func TestAssembleRejects(t *testing.T) {
	bins := fakeBinaries(t)
	for name, m := range map[string]Meta{
		"no version":  {Commit: "c", Created: unixEpoch},
		"no commit":   {Version: "v", Created: unixEpoch},
		"before 1970": {Version: "v", Commit: "c", Created: time.Unix(-1, 0)},
	} {
		if _, err := Assemble(bins, m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Assemble(nil, testMeta); err == nil {
		t.Error("no binaries: no error")
	}
	if _, err := Assemble([]Binary{{Platform: Platforms[0], Path: filepath.Join(t.TempDir(), "missing")}}, testMeta); err == nil {
		t.Error("missing binary: no error")
	}
}

func TestWriteAndReadLayout(t *testing.T) {
	idx, err := Assemble(fakeBinaries(t), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	l := Layout{Dir: t.TempDir()}
	d, err := Write(idx, l, DefaultRepository, "(devel)")
	if err != nil {
		t.Fatal(err)
	}
	if d != digest(t, idx) {
		t.Errorf("Write returned %s, want %s", d, digest(t, idx))
	}
	got, tag, err := ReadLayout(l.OCIDir())
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != d || tag != "devel" {
		t.Errorf("the layout holds %s tagged %q, want %s tagged devel", digest(t, got), tag, d)
	}
	if err := validate.Index(got); err != nil {
		t.Errorf("validate.Index of the layout: %v", err)
	}
	if b, err := os.ReadFile(l.DigestFile()); err != nil || strings.TrimSpace(string(b)) != d.String() {
		t.Errorf("digest file %q (%v), want %s", b, err, d)
	}
	// Writing again replaces the layout rather than adding to it.
	if _, err := Write(idx, l, DefaultRepository, "(devel)"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadLayout(l.OCIDir()); err != nil {
		t.Errorf("after a second Write: %v", err)
	}
	// One docker-load tarball per platform, tagged, holding that image.
	im, _ := idx.IndexManifest()
	for _, desc := range im.Manifests {
		path := l.Tarball(*desc.Platform)
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || len(m[0].RepoTags) != 1 || !strings.HasSuffix(m[0].RepoTags[0], "elector:devel") {
			t.Errorf("%s: manifest.json %+v, want one image tagged elector:devel", path, m)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: validate.Image: %v", path, err)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != desc.Platform.Architecture {
			t.Errorf("%s holds the %s image", path, cf.Architecture)
		}
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                 "v0.1.0",
		"v0.1.0-3-gabcdef-dirty": "v0.1.0-3-gabcdef-dirty",
		"(devel)":                "devel",
		"v1+build":               "v1-build",
		"":                       "latest",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := ParsePlatforms("linux/arm64, linux/amd64")
	if err != nil || len(ps) != 2 || ps[0].Architecture != "arm64" || ps[1].Architecture != "amd64" {
		t.Errorf("ParsePlatforms = %v, %v", ps, err)
	}
	for _, bad := range []string{"", ",", "linux/riscv64", "amd64"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q): no error", bad)
		}
	}
}

func TestParseRepository(t *testing.T) {
	if _, err := ParseRepository("ghcr.io/elector-dev/elector"); err != nil {
		t.Error(err)
	}
	if _, err := ParseRepository("localhost:5000/elector"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "ghcr.io/x/elector:v1", "ghcr.io/x/elector@sha256:00", "UPPER/case", "elector"} {
		if _, err := ParseRepository(bad); err == nil {
			t.Errorf("ParseRepository(%q): no error", bad)
		}
	}
}
