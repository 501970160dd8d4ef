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
	"context"
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Media types of what the release attaches to the image.
const (
	// SBOMArtifactType is the artifactType of the SBOM referrer and the
	// media type of its one layer.
	SBOMArtifactType = "application/vnd.cyclonedx+json"
	// emptyMediaType is the OCI 1.1 empty descriptor's media type, the
	// config of an artifact that has none.
	emptyMediaType = "application/vnd.oci.empty.v1+json"
	// simpleSigningMediaType is the media type of cosign's signature
	// payload layer, and signatureAnnotation the annotation of that layer
	// that holds the base64 signature (cosign's layout, so that `cosign
	// verify --key` finds and checks it).
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	signatureAnnotation    = "dev.cosignproject.cosign/signature"
	// titleAnnotation names a layer's file.
	titleAnnotation = "org.opencontainers.image.title"
)

// registryTimeout bounds every registry command: a push of an SBOM or a
// signature is a few small requests.
const registryTimeout = 2 * time.Minute

// shutdownTimeout bounds the in-process registry's shutdown.
const shutdownTimeout = 10 * time.Second

// remoteOptions are the options of every registry request: credentials as
// docker and crane find them (docker login), none for the rehearsal's
// in-process registry.
func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// parseDigestRef parses an image reference by digest, repo@sha256:….
func parseDigestRef(s string) (name.Digest, error) {
	if s == "" {
		return name.Digest{}, usageError{"missing --image, the image by digest (repo@sha256:…, as elector-image push prints it)"}
	}
	d, err := name.NewDigest(s, name.StrictValidation)
	if err != nil {
		return name.Digest{}, usageError{fmt.Sprintf("--image %q is not an image by digest (repo@sha256:…): %v", s, err)}
	}
	return d, nil
}

// runRegistry serves an in-process OCI registry (go-containerregistry's,
// with the referrers API) on a loopback port until SIGINT or SIGTERM: the
// rehearsal's registry. It writes host:port to --addr-file once it
// listens.
func runRegistry(args []string, stdout io.Writer) error {
	fs := newFlags("registry")
	addr := fs.String("addr", "127.0.0.1:0", "the address to listen on")
	addrFile := fs.String("addr-file", "", "the file to write host:port to once listening")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("unable to listen on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler: registry.New(registry.WithReferrersSupport(true),
			registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if *addrFile != "" {
		// Written whole, then renamed: a reader sees all of it or nothing.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return errors.Join(fmt.Errorf("unable to write %s: %w", tmp, err), srv.Close())
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return errors.Join(fmt.Errorf("unable to write %s: %w", *addrFile, err), srv.Close())
		}
	}
	fmt.Fprintf(stdout, "registry listening on %s (referrers API on)\n", ln.Addr())
	select {
	case err := <-served:
		return fmt.Errorf("unable to serve the registry: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("unable to shut the registry down: %w", err)
	}
	return nil
}

// runExtract writes one file of one platform's image of an image index,
// e.g. the sidecar's binary for its SBOM.
func runExtract(args []string, stdout io.Writer) error {
	fs := newFlags("extract")
	image := fs.String("image", "", "the image index by digest (repo@sha256:…)")
	platform := fs.String("platform", "linux/amd64", "the platform of the image to read, os/arch")
	file := fs.String("file", "/elector", "the file to extract")
	out := fs.String("out", "", "where to write it (mode 0755)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{"missing --out, where to write the file"}
	}
	p, err := v1.ParsePlatform(*platform)
	if err != nil {
		return usageError{fmt.Sprintf("--platform %q: %v", *platform, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	img, err := remote.Image(ref, append(remoteOptions(ctx), remote.WithPlatform(*p))...)
	if err != nil {
		return fmt.Errorf("unable to read the %s image of %s: %w", *platform, ref, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	want := strings.TrimPrefix(path.Clean("/"+*file), "/")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the %s image of %s has no %s", *platform, ref, *file)
		}
		if err != nil {
			return fmt.Errorf("unable to read the %s image of %s: %w", *platform, ref, err)
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("unable to read %s: %w", *file, err)
		}
		if err := os.WriteFile(*out, b, 0o755); err != nil {
			return fmt.Errorf("unable to write %s: %w", *out, err)
		}
		fmt.Fprintf(stdout, "extracted %s (%d bytes) of the %s image of %s to %s\n", *file, len(b), *platform, ref, *out)
		return nil
	}
}

// rawManifest is a manifest to push as it is.
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// sbomManifest returns the OCI 1.1 artifact manifest of an SBOM whose
// subject is the image: artifactType CycloneDX, the empty config, the SBOM
// as its one layer.
func sbomManifest(subject v1.Descriptor, config, layer v1.Descriptor) ([]byte, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  SBOMArtifactType,
		Config:        config,
		Layers:        []v1.Descriptor{layer},
		Subject: &v1.Descriptor{
			MediaType: subject.MediaType,
			Size:      subject.Size,
			Digest:    subject.Digest,
		},
	}
	return json.Marshal(m)
}

// runAttachSBOM pushes an SBOM as an OCI referrer of the image: an
// artifact manifest whose subject is the image index, found by the
// registry's referrers API (GET /v2/<name>/referrers/<digest>).
func runAttachSBOM(args []string, stdout io.Writer) error {
	fs := newFlags("attach-sbom")
	image := fs.String("image", "", "the image by digest (repo@sha256:…)")
	sbom := fs.String("sbom", "", "the CycloneDX JSON SBOM to attach")
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	if *sbom == "" {
		return usageError{"missing --sbom, the CycloneDX JSON file to attach"}
	}
	body, err := os.ReadFile(*sbom)
	if err != nil {
		return fmt.Errorf("unable to read the SBOM: %w", err)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(body, &bom); err != nil {
		return fmt.Errorf("%s is not a CycloneDX JSON SBOM (make it with cyclonedx-gomod bin -json): %w", *sbom, err)
	}
	if bom.BOMFormat != "CycloneDX" {
		return fmt.Errorf("%s is not a CycloneDX JSON SBOM (bomFormat %q): make it with cyclonedx-gomod bin -json", *sbom, bom.BOMFormat)
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	opts := remoteOptions(ctx)
	subject, err := remote.Head(ref, opts...)
	if err != nil {
		return fmt.Errorf("unable to find the image %s: %w", ref, err)
	}
	config := static.NewLayer([]byte("{}"), emptyMediaType)
	layer := static.NewLayer(body, SBOMArtifactType)
	descs := make([]v1.Descriptor, 0, 2)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(ref.Context(), l, opts...); err != nil {
			return fmt.Errorf("unable to push the SBOM to %s: %w", ref.Context(), err)
		}
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("unable to hash the SBOM: %w", err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("unable to size the SBOM: %w", err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return fmt.Errorf("unable to type the SBOM: %w", err)
		}
		descs = append(descs, v1.Descriptor{MediaType: mt, Size: size, Digest: d})
	}
	descs[1].Annotations = map[string]string{titleAnnotation: filepath.Base(*sbom)}
	m, err := sbomManifest(*subject, descs[0], descs[1])
	if err != nil {
		return fmt.Errorf("unable to encode the SBOM manifest: %w", err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(m))
	if err != nil {
		return fmt.Errorf("unable to hash the SBOM manifest: %w", err)
	}
	at := ref.Context().Digest(d.String())
	if err := remote.Put(at, rawManifest{m, types.OCIManifestSchema1}, opts...); err != nil {
		return fmt.Errorf("unable to push the SBOM manifest to %s: %w", at, err)
	}
	fmt.Fprintf(stdout, "attached %s as %s (artifactType %s, subject %s)\n", filepath.Base(*sbom), at, SBOMArtifactType, subject.Digest)
	return nil
}

// runReferrers lists the referrers of the image (the registry's referrers
// API; go-containerregistry falls back to the tag sha256-<hex> of the OCI
// distribution spec where a registry has none), reads each one's manifest
// and writes the first layer of the first of --artifact-type to --out.
func runReferrers(args []string, stdout io.Writer) error {
	fs := newFlags("referrers")
	image := fs.String("image", "", "the image by digest (repo@sha256:…)")
	artifactType := fs.String("artifact-type", SBOMArtifactType, "the artifactType to fetch")
	out := fs.String("out", "", "where to write the referrer's content (optional)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	opts := remoteOptions(ctx)
	idx, err := remote.Referrers(ref, opts...)
	if err != nil {
		return fmt.Errorf("unable to list the referrers of %s: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("unable to read the referrers of %s: %w", ref, err)
	}
	found := false
	for _, d := range im.Manifests {
		r := ref.Context().Digest(d.Digest.String())
		desc, err := remote.Get(r, opts...)
		if err != nil {
			return fmt.Errorf("unable to read the referrer %s: %w", r, err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(desc.Manifest, &m); err != nil {
			return fmt.Errorf("unable to parse the referrer %s: %w", r, err)
		}
		if m.Subject == nil || m.Subject.Digest.String() != ref.DigestStr() {
			return fmt.Errorf("the referrer %s of %s has subject %v", r, ref, m.Subject)
		}
		fmt.Fprintf(stdout, "referrer %s artifactType %s", d.Digest, m.ArtifactType)
		for _, l := range m.Layers {
			fmt.Fprintf(stdout, " layer %s %s %d bytes", l.MediaType, l.Annotations[titleAnnotation], l.Size)
		}
		fmt.Fprintln(stdout)
		if found || m.ArtifactType != *artifactType || len(m.Layers) == 0 {
			continue
		}
		found = true
		if *out == "" {
			continue
		}
		layer, err := remote.Layer(ref.Context().Digest(m.Layers[0].Digest.String()), opts...)
		if err != nil {
			return fmt.Errorf("unable to read the layer of %s: %w", r, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return fmt.Errorf("unable to read the layer of %s: %w", r, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("unable to read the layer of %s: %w", r, err)
		}
		got, _, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("unable to hash the layer of %s: %w", r, err)
		}
		if got != m.Layers[0].Digest {
			return fmt.Errorf("the layer of %s has digest %s, its manifest says %s", r, got, m.Layers[0].Digest)
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return fmt.Errorf("unable to write %s: %w", *out, err)
		}
	}
	if !found {
		return fmt.Errorf("%s has no referrer of artifactType %s (%d referrers)", ref, *artifactType, len(im.Manifests))
	}
	return nil
}

// runKeygen writes an ECDSA P-256 key pair as PEM: the private key
// (PKCS #8, unencrypted: the rehearsal's throwaway key) and the public key
// (PKIX, as cosign.pub).
func runKeygen(args []string, stdout io.Writer) error {
	fs := newFlags("keygen")
	key := fs.String("key", "", "the private key to write (mode 0600)")
	pub := fs.String("pub", "", "the public key to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" || *pub == "" {
		return usageError{"missing --key or --pub, the files to write"}
	}
	privPEM, pubPEM, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
	if err != nil {
		return fmt.Errorf("unable to generate a key: %w", err)
	}
	if err := os.WriteFile(*key, privPEM, 0o600); err != nil {
		return fmt.Errorf("unable to write the key: %w", err)
	}
	if err := os.WriteFile(*pub, pubPEM, 0o644); err != nil {
		return fmt.Errorf("unable to write the public key: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (ECDSA P-256)\n", *key, *pub)
	return nil
}

// signatureTag is where cosign keeps the signatures of an image:
// the tag sha256-<hex>.sig in its repository.
func signatureTag(ref name.Digest) name.Tag {
	return ref.Context().Tag(strings.Replace(ref.DigestStr(), ":", "-", 1) + ".sig")
}

// runSign signs the image by digest as `cosign sign --key` does without a
// transparency log: the simple-signing payload (sigstore's payload.Cosign)
// naming the digest, signed with ECDSA P-256 and SHA-256 by sigstore's
// signature package, pushed as the layer of an image tagged
// sha256-<hex>.sig with the signature in its annotation.
func runSign(args []string, stdout io.Writer) error {
	fs := newFlags("sign")
	image := fs.String("image", "", "the image by digest (repo@sha256:…)")
	key := fs.String("key", "", "the private key (PEM, unencrypted PKCS #8, e.g. from release keygen)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	if *key == "" {
		return usageError{"missing --key, the private key (PEM)"}
	}
	signer, err := signature.LoadSignerVerifierFromPEMFile(*key, crypto.SHA256, nil)
	if err != nil {
		return fmt.Errorf("unable to load the key %s: %w", *key, err)
	}
	body, err := payload.Cosign{Image: ref, ClaimedIdentity: ref.String()}.MarshalJSON()
	if err != nil {
		return fmt.Errorf("unable to encode the payload: %w", err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("unable to sign: %w", err)
	}
	img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{
			Layer:       static.NewLayer(body, simpleSigningMediaType),
			Annotations: map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
		})
	if err != nil {
		return fmt.Errorf("unable to make the signature image: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	opts := remoteOptions(ctx)
	if _, err := remote.Head(ref, opts...); err != nil {
		return fmt.Errorf("unable to find the image %s: %w", ref, err)
	}
	tag := signatureTag(ref)
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("unable to push the signature to %s: %w", tag, err)
	}
	fmt.Fprintf(stdout, "signed %s: %s\n", ref, tag)
	return nil
}

// runVerify checks that the image by digest has a signature by the public
// key whose payload names that digest and that repository.
func runVerify(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	image := fs.String("image", "", "the image by digest (repo@sha256:…)")
	pub := fs.String("pub", "", "the public key (PEM)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	if *pub == "" {
		return usageError{"missing --pub, the public key (PEM)"}
	}
	verifier, err := signature.LoadVerifierFromPEMFile(*pub, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("unable to load the public key %s: %w", *pub, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	tag := signatureTag(ref)
	img, err := remote.Image(tag, remoteOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("unable to read the signatures of %s (%s): %w", ref, tag, err)
	}
	n, err := verifySignatures(img, ref, verifier)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verified %s: signed by %s (%d of its signatures)\n", ref, *pub, n)
	return nil
}

// verifySignatures counts the layers of a signature image that verify and
// whose payload names ref; none is an error that says why.
func verifySignatures(img v1.Image, ref name.Digest, verifier signature.Verifier) (int, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("unable to read the signature manifest: %w", err)
	}
	var errs []error
	n := 0
	for i, l := range m.Layers {
		if l.MediaType != simpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[signatureAnnotation])
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: unable to decode it: %w", i, err))
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: unable to find its payload: %w", i, err))
			continue
		}
		body, err := readLayer(layer)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: %w", i, err))
			continue
		}
		if err := verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)); err != nil {
			errs = append(errs, fmt.Errorf("signature %d: not by this key: %w", i, err))
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(body, &p); err != nil {
			errs = append(errs, fmt.Errorf("signature %d: unable to parse its payload: %w", i, err))
			continue
		}
		if p.Critical.Type != payload.CosignSignatureType || p.Critical.Image.DockerManifestDigest != ref.DigestStr() {
			errs = append(errs, fmt.Errorf("signature %d: its payload names %s %s, not the image %s", i, p.Critical.Type, p.Critical.Image.DockerManifestDigest, ref.DigestStr()))
			continue
		}
		claimed, err := name.ParseReference(p.Critical.Identity.DockerReference)
		if err != nil || claimed.Context().Name() != ref.Context().Name() {
			errs = append(errs, fmt.Errorf("signature %d: its payload names the repository %q, not %s", i, p.Critical.Identity.DockerReference, ref.Context().Name()))
			continue
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no valid signature of %s: %w", ref, errors.Join(append(errs, errors.New("no signature layer verified"))...))
	}
	return n, nil
}

func readLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("unable to read the layer: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("unable to read the layer: %w", err)
	}
	return b, nil
}

// runPin rewrites the images: entry of name in each kustomization to the
// image by digest (newName: <repo>, digest: sha256:…, no newTag), so that
// the rendered manifests run exactly the image that was pushed and tested.
func runPin(args []string, stdout io.Writer) error {
	fs := newFlags("pin")
	image := fs.String("image", "", "the image by digest (repo@sha256:…)")
	imageName := fs.String("name", "registry.example.com/elector", "the image name the kustomizations' images: entry matches")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	ref, err := parseDigestRef(*image)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"name the kustomization.yaml files to pin, e.g. deploy/examples/nginx/kustomization.yaml"}
	}
	for _, file := range fs.Args() {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("unable to read the kustomization: %w", err)
		}
		out, err := pinImage(string(b), *imageName, ref)
		if err != nil {
			return fmt.Errorf("unable to pin %s: %w", file, err)
		}
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			return fmt.Errorf("unable to write the kustomization: %w", err)
		}
		fmt.Fprintf(stdout, "pinned %s in %s to %s\n", *imageName, file, ref)
	}
	return nil
}

// pinImage rewrites, in a kustomization's top-level images: list, the
// entry "- name: <imageName>" to newName and digest of ref, dropping its
// newTag, newName and digest lines; the rest of the file is kept as it is.
func pinImage(kustomization, imageName string, ref name.Digest) (string, error) {
	lines := strings.SplitAfter(kustomization, "\n")
	var out []string
	inImages, pinned := false, 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimRight(l, "\r\n")
		switch {
		case trimmed == "images:":
			inImages = true
		case inImages && trimmed != "" && !strings.HasPrefix(trimmed, " ") && !strings.HasPrefix(trimmed, "-") && !strings.HasPrefix(trimmed, "#"):
			inImages = false
		}
		if !inImages || strings.TrimSpace(trimmed) != "- name: "+imageName {
			out = append(out, l)
			continue
		}
		// The entry's fields are indented two past its dash.
		indent := trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, " "))] + "  "
		out = append(out, l,
			indent+"newName: "+ref.Context().Name()+"\n",
			indent+"digest: "+ref.DigestStr()+"\n")
		// Drop the entry's own newTag, newName and digest.
		for i+1 < len(lines) {
			next := strings.TrimRight(lines[i+1], "\r\n")
			if !strings.HasPrefix(next, indent) || strings.HasPrefix(next, indent+" ") {
				break
			}
			field := strings.TrimSpace(next)
			if !strings.HasPrefix(field, "newTag:") && !strings.HasPrefix(field, "newName:") && !strings.HasPrefix(field, "digest:") {
				break
			}
			i++
		}
		pinned++
	}
	if pinned == 0 {
		return "", fmt.Errorf("no images: entry named %s", imageName)
	}
	return strings.Join(out, ""), nil
}
