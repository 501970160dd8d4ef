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

// Command elector-image builds the elector sidecar's multi-platform OCI
// image from source without a container engine, and pushes it.
//
//	elector-image build --version=v0.1.0 --commit=$(git rev-parse HEAD) [--out=_output/image]
//	elector-image push --registry=ghcr.io/elector-dev/elector [--out=_output/image]
//
// build prints the image index digest on stdout; it is reproducible: every
// timestamp in the image is SOURCE_DATE_EPOCH (by default the commit time
// of the source's HEAD). make image and make image-push run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	image "github.com/elector-dev/elector/tools/image"
)

// Exit codes.
const (
	exitOK = 0
	// exitFailed: the build or the push failed.
	exitFailed = 1
	// exitUsage: a flag or argument is wrong; nothing was done.
	exitUsage = 2
)

// defaultOut is the output directory, relative to the working directory
// (make runs the tool with an absolute one under the repository).
const defaultOut = "_output/image"

const prog = "elector-image"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if len(args) == 0 {
		return usage(stderr, "no command: say build or push")
	}
	switch args[0] {
	case "build":
		return build(ctx, args[1:], stdout, stderr, log)
	case "push":
		return push(ctx, args[1:], stdout, stderr, log)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(stdout, "usage: %s build|push [flags]; %s build -h for the flags\n", prog, prog)
		return exitOK
	default:
		return usage(stderr, fmt.Sprintf("unknown command %q: say build or push", args[0]))
	}
}

func usage(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
	return exitUsage
}

// parse parses args with fs, and reports a bad flag on one line.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return exitOK, false
		}
		return usage(stderr, fmt.Sprintf("%v (see %s %s -h)", err, prog, fs.Name())), false
	}
	if fs.NArg() > 0 {
		return usage(stderr, fmt.Sprintf("unexpected argument %q: %s %s takes flags only", fs.Arg(0), prog, fs.Name())), false
	}
	return 0, true
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	source := fs.String("source", ".", "the repository root, holding "+image.Package)
	out := fs.String("out", defaultOut, "the output directory: oci/ (an OCI image layout), elector-<os>-<arch>.tar (docker load), digest")
	version := fs.String("version", "", "the version to stamp into the binary and the labels (required), e.g. $(git describe --tags)")
	commit := fs.String("commit", "", "the commit to stamp (required), e.g. $(git rev-parse HEAD)")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "every timestamp in the image, in seconds since 1970; default $SOURCE_DATE_EPOCH, else the commit time of the source's HEAD")
	platforms := fs.String("platforms", platformList(), "the platforms, comma-separated")
	repository := fs.String("repository", image.DefaultRepository, "the repository of the tarballs' tag, <repository>:<version>")
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	if *version == "" {
		return usage(stderr, "--version is required: e.g. --version=$(git describe --tags --always --dirty)")
	}
	if *commit == "" {
		return usage(stderr, "--commit is required: e.g. --commit=$(git rev-parse HEAD)")
	}
	ps, err := image.ParsePlatforms(*platforms)
	if err != nil {
		return usage(stderr, "--platforms: "+err.Error())
	}
	if _, err := name.NewRepository(*repository); err != nil {
		return usage(stderr, fmt.Sprintf("--repository %q is not a valid repository name: %v", *repository, err))
	}
	created, err := sourceDate(ctx, *epoch, *source)
	if err != nil {
		return usage(stderr, err.Error())
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		return usage(stderr, fmt.Sprintf("--out %q: %v", *out, err))
	}
	binDir, err := os.MkdirTemp("", "elector-image-")
	if err != nil {
		fmt.Fprintf(stderr, "%s: unable to create a build directory: %v\n", prog, err)
		return exitFailed
	}
	defer os.RemoveAll(binDir)

	start := time.Now()
	_, digest, err := image.Build(ctx, image.BuildOptions{
		CompileOptions: image.CompileOptions{Source: *source, Dir: binDir, Logger: log},
		Meta:           image.Meta{Version: *version, Commit: *commit, Created: created},
		Platforms:      ps,
		Out:            image.Layout{Dir: abs},
		Repository:     *repository,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return exitFailed
	}
	log.Info("built", "digest", digest.String(), "out", abs, "platforms", len(ps),
		"created", created.Format(time.RFC3339), "duration", time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(stdout, digest.String())
	return exitOK
}

func push(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	out := fs.String("out", defaultOut, "the output directory of build")
	registry := fs.String("registry", "", "the repository to push to (required), e.g. ghcr.io/elector-dev/elector; the tag is the version")
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	if *registry == "" {
		return usage(stderr, "--registry is required: e.g. make image-push REGISTRY=ghcr.io/elector-dev/elector")
	}
	if _, err := image.ParseRepository(*registry); err != nil {
		return usage(stderr, "--registry: "+err.Error())
	}
	// Credentials as docker and crane find them: $DOCKER_CONFIG or
	// ~/.docker/config.json (docker login), with its credential helpers.
	ref, err := image.Push(ctx, filepath.Join(*out, "oci"), *registry, log, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return exitFailed
	}
	fmt.Fprintln(stdout, ref.String())
	return exitOK
}

func platformList() string {
	var s []string
	for _, p := range image.Platforms {
		s = append(s, p.OS+"/"+p.Architecture)
	}
	return strings.Join(s, ",")
}

// sourceDate parses SOURCE_DATE_EPOCH, or asks git for the commit time of
// HEAD in source when it is empty.
func sourceDate(ctx context.Context, epoch, source string) (time.Time, error) {
	if epoch == "" {
		cmd := exec.CommandContext(ctx, "git", "-C", source, "log", "-1", "--format=%ct")
		out, err := cmd.Output()
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH is unset and git has no commit time for %s (%w): set SOURCE_DATE_EPOCH or --source-date-epoch to a number of seconds", source, err)
		}
		epoch = strings.TrimSpace(string(out))
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970: set it to e.g. $(git log -1 --format=%%ct)", epoch)
	}
	return time.Unix(secs, 0).UTC(), nil
}
