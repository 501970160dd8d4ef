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
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runOK runs the release command and fails the test unless it succeeds.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("release %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// runFail runs the release command and returns its stderr, failing the
// test unless it exits with code.
func runFail(t *testing.T, code int, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if got := run(args, &stdout, &stderr); got != code {
		t.Fatalf("release %s: exit %d (%s), want %d", strings.Join(args, " "), got, stderr.String(), code)
	}
	return stderr.String()
}

// pushIndex starts an in-process registry with the referrers API and
// pushes a random two-image index to it; it returns the index by digest.
func pushIndex(t *testing.T) name.Digest {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		remote.DefaultTransport.(*http.Transport).CloseIdleConnections()
		srv.Close()
	})
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(strings.TrimPrefix(srv.URL, "http://") + "/elector@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestSBOMReferrer: attach-sbom pushes the SBOM as an OCI 1.1 artifact
// whose subject is the image; the registry's referrers API lists it, and
// referrers fetches it back byte for byte.
func TestSBOMReferrer(t *testing.T) {
	ref := pushIndex(t)
	dir := t.TempDir()
	sbom := filepath.Join(dir, "elector_v0.1.0_image.cdx.json")
	body := `{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"purl":"pkg:golang/github.com/elector-dev/elector@v0.1.0"}]}`
	if err := os.WriteFile(sbom, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, "attach-sbom", "--image="+ref.String(), "--sbom="+sbom)
	if !strings.Contains(out, "subject "+ref.DigestStr()) {
		t.Errorf("attach-sbom printed %q, want the subject %s", out, ref.DigestStr())
	}

	// The referrers API itself, as any client asks it.
	resp, err := http.Get("http://" + ref.RegistryStr() + "/v2/elector/referrers/" + ref.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	var listed v1.IndexManifest
	err = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(listed.Manifests) != 1 {
		t.Fatalf("GET referrers: %s, %d manifests (%v), want 200 and 1", resp.Status, len(listed.Manifests), err)
	}

	got := filepath.Join(dir, "got.json")
	out = runOK(t, "referrers", "--image="+ref.String(), "--out="+got)
	if want := "artifactType " + SBOMArtifactType + " layer " + SBOMArtifactType + " elector_v0.1.0_image.cdx.json"; !strings.Contains(out, want) {
		t.Errorf("referrers printed %q, want %q", out, want)
	}
	if b, err := os.ReadFile(got); err != nil || string(b) != body {
		t.Errorf("referrers wrote %q (%v), want the SBOM %q", b, err, body)
	}
	// Another artifact type: none.
	if msg := runFail(t, exitFail, "referrers", "--image="+ref.String(), "--artifact-type=application/spdx+json"); !strings.Contains(msg, "no referrer of artifactType application/spdx+json") {
		t.Errorf("referrers of another type: %q", msg)
	}
	// Not an SBOM: refused before anything is pushed.
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := runFail(t, exitFail, "attach-sbom", "--image="+ref.String(), "--sbom="+sbom); !strings.Contains(msg, "not a CycloneDX JSON SBOM") {
		t.Errorf("attach-sbom of a non-CycloneDX file: %q", msg)
	}
}

// TestSignVerify: a signature by the key verifies with its public key, and
// not with another key; it names one digest, so it does not verify another
// image.
func TestSignVerify(t *testing.T) {
	ref := pushIndex(t)
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	runOK(t, "keygen", "--key="+key, "--pub="+pub)
	otherKey, otherPub := filepath.Join(dir, "other.key"), filepath.Join(dir, "other.pub")
	runOK(t, "keygen", "--key="+otherKey, "--pub="+otherPub)

	if msg := runFail(t, exitFail, "verify", "--image="+ref.String(), "--pub="+pub); !strings.Contains(msg, "unable to read the signatures") {
		t.Errorf("verify before signing: %q", msg)
	}
	out := runOK(t, "sign", "--image="+ref.String(), "--key="+key)
	if want := strings.Replace(ref.DigestStr(), ":", "-", 1) + ".sig"; !strings.Contains(out, want) {
		t.Errorf("sign printed %q, want the tag %s", out, want)
	}
	if out := runOK(t, "verify", "--image="+ref.String(), "--pub="+pub); !strings.Contains(out, "verified "+ref.String()) {
		t.Errorf("verify printed %q", out)
	}
	if msg := runFail(t, exitFail, "verify", "--image="+ref.String(), "--pub="+otherPub); !strings.Contains(msg, "not by this key") {
		t.Errorf("verify with another key: %q, want it to say the signature is not by this key", msg)
	}

	// The signature of this digest copied under another image's tag:
	// its payload names the first digest, so it does not verify.
	other := pushIndex(t)
	sigs, err := remote.Image(signatureTag(ref), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(signatureTag(other), sigs, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	if msg := runFail(t, exitFail, "verify", "--image="+other.String(), "--pub="+pub); !strings.Contains(msg, "not the image "+other.DigestStr()) {
		t.Errorf("verify of a signature copied from another image: %q", msg)
	}
	if msg := runFail(t, exitUsage, "sign", "--image="+ref.Context().Tag("v0.1.0").String(), "--key="+key); !strings.Contains(msg, "not an image by digest") {
		t.Errorf("sign of a tag: %q, want it refused (sign by digest only)", msg)
	}
}

func TestPinImage(t *testing.T) {
	ref, err := name.NewDigest("127.0.0.1:5000/elector@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	in := "resources:\n- deployment.yaml\nimages:\n- name: other/app\n  newTag: \"1\"\n- name: registry.example.com/elector\n  newTag: v0.1.0\nreplacements:\n- source: {}\n"
	got, err := pinImage(in, "registry.example.com/elector", ref)
	if err != nil {
		t.Fatal(err)
	}
	want := "resources:\n- deployment.yaml\nimages:\n- name: other/app\n  newTag: \"1\"\n- name: registry.example.com/elector\n" +
		"  newName: 127.0.0.1:5000/elector\n  digest: sha256:" + strings.Repeat("ab", 32) + "\nreplacements:\n- source: {}\n"
	if got != want {
		t.Errorf("pinImage:\n%s\nwant:\n%s", got, want)
	}
	// Pinning again replaces the pin.
	if again, err := pinImage(got, "registry.example.com/elector", ref); err != nil || again != want {
		t.Errorf("pinImage of a pinned kustomization:\n%s (%v)\nwant:\n%s", again, err, want)
	}
	if _, err := pinImage("resources:\n- a.yaml\n", "registry.example.com/elector", ref); err == nil {
		t.Error("pinImage of a kustomization without the image: no error")
	}
}

// TestExtract: extract writes the file of the named platform's image of
// an index, and says which file is missing.
func TestExtract(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(func() {
		remote.DefaultTransport.(*http.Transport).CloseIdleConnections()
		srv.Close()
	})
	imageWith := func(content string) v1.Image {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if err := tw.WriteHeader(&tar.Header{Name: "elector", Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b.Bytes())), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: imageWith("amd64 binary"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: imageWith("arm64 binary"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(strings.TrimPrefix(srv.URL, "http://") + "/elector@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "elector")
	runOK(t, "extract", "--image="+ref.String(), "--platform=linux/arm64", "--file=/elector", "--out="+out)
	if b, err := os.ReadFile(out); err != nil || string(b) != "arm64 binary" {
		t.Errorf("extract of linux/arm64 wrote %q (%v), want the arm64 binary", b, err)
	}
	if msg := runFail(t, exitFail, "extract", "--image="+ref.String(), "--platform=linux/arm64", "--file=/bin/sh", "--out="+out); !strings.Contains(msg, "has no /bin/sh") {
		t.Errorf("extract of a missing file: %q", msg)
	}
}
