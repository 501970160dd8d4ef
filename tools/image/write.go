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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation names an image in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Write writes idx to l: the OCI image layout (replacing any earlier one),
// one `docker load` tarball per platform tagged repository:Tag(version),
// and the digest file. It returns the index digest.
func Write(idx v1.ImageIndex, l Layout, repository, version string) (v1.Hash, error) {
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("unable to compute the index digest: %w", err)
	}
	tag, err := name.NewTag(repository + ":" + Tag(version))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("unable to tag the tarballs: repository %q: %w", repository, err)
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return v1.Hash{}, fmt.Errorf("unable to create the output directory: %w", err)
	}
	if err := os.RemoveAll(l.OCIDir()); err != nil {
		return v1.Hash{}, fmt.Errorf("unable to remove the previous OCI layout: %w", err)
	}
	p, err := layout.Write(l.OCIDir(), empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("unable to write the OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: Tag(version)})); err != nil {
		return v1.Hash{}, fmt.Errorf("unable to write the OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("unable to read the index: %w", err)
	}
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			return v1.Hash{}, fmt.Errorf("unable to write a tarball: manifest %s has no platform", desc.Digest)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("unable to read the image of %s: %w", platformString(*desc.Platform), err)
		}
		if err := tarball.WriteToFile(l.Tarball(*desc.Platform), tag, img); err != nil {
			return v1.Hash{}, fmt.Errorf("unable to write the tarball of %s: %w", platformString(*desc.Platform), err)
		}
	}
	if err := os.WriteFile(l.DigestFile(), []byte(digest.String()+"\n"), 0o644); err != nil {
		return v1.Hash{}, fmt.Errorf("unable to write the digest file: %w", err)
	}
	return digest, nil
}

// BuildOptions say what Build builds and where.
type BuildOptions struct {
	CompileOptions
	Meta
	// Platforms default to all of Platforms.
	Platforms []v1.Platform
	// Out is where Write puts the output.
	Out Layout
	// Repository is the tarballs' repository; DefaultRepository when empty.
	Repository string
}

// Build compiles, assembles and writes the image index, and returns it
// with its digest.
func Build(ctx context.Context, o BuildOptions) (v1.ImageIndex, v1.Hash, error) {
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = Platforms
	}
	repo := o.Repository
	if repo == "" {
		repo = DefaultRepository
	}
	bins, err := Compile(ctx, o.CompileOptions, o.Meta, platforms)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	idx, err := Assemble(bins, o.Meta)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	digest, err := Write(idx, o.Out, repo, o.Version)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return idx, digest, nil
}

// ReadLayout returns the image index of the OCI layout that Write wrote,
// and its tag.
func ReadLayout(dir string) (v1.ImageIndex, string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("unable to read the OCI layout (run make image first): %w", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("unable to read the OCI layout: %w", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("unable to read the OCI layout: %w", err)
	}
	if len(im.Manifests) != 1 {
		return nil, "", fmt.Errorf("unable to read the OCI layout %s: index.json names %d manifests, want the one image index", dir, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if !desc.MediaType.IsIndex() {
		return nil, "", fmt.Errorf("unable to read the OCI layout %s: index.json names a %s, want an image index", dir, desc.MediaType)
	}
	idx, err := top.ImageIndex(desc.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("unable to read the OCI layout: %w", err)
	}
	return idx, desc.Annotations[refNameAnnotation], nil
}

// Push pushes the image index of the OCI layout in dir to repository
// (such as ghcr.io/elector-dev/elector), tagged as it is in the layout,
// and returns the pushed reference by digest.
func Push(ctx context.Context, dir, repository string, log *slog.Logger, opts ...remote.Option) (name.Digest, error) {
	if log == nil {
		log = slog.Default()
	}
	repo, err := ParseRepository(repository)
	if err != nil {
		return name.Digest{}, err
	}
	idx, tag, err := ReadLayout(dir)
	if err != nil {
		return name.Digest{}, err
	}
	if tag == "" {
		return name.Digest{}, fmt.Errorf("unable to push: the OCI layout %s has no tag (%s); rebuild it with make image", dir, refNameAnnotation)
	}
	digest, err := idx.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("unable to compute the index digest: %w", err)
	}
	ref := repo.Tag(tag)
	log.Info("pushing", "ref", ref.String(), "digest", digest.String())
	if err := remote.WriteIndex(ref, idx, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return name.Digest{}, fmt.Errorf("unable to push %s: %w", ref, err)
	}
	return repo.Digest(digest.String()), nil
}

// ParseRepository parses a repository name without tag or digest, such as
// ghcr.io/elector-dev/elector.
func ParseRepository(s string) (name.Repository, error) {
	if s == "" {
		return name.Repository{}, errors.New("no repository: name one, e.g. REGISTRY=ghcr.io/elector-dev/elector")
	}
	if strings.ContainsAny(s, "@") || strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
		return name.Repository{}, fmt.Errorf("repository %q has a tag or digest: name the repository alone (the tag is the version), e.g. ghcr.io/elector-dev/elector", s)
	}
	repo, err := name.NewRepository(s, name.StrictValidation)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q is not a valid name: %w; e.g. ghcr.io/elector-dev/elector", s, err)
	}
	return repo, nil
}
