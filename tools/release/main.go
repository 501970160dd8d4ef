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

// Command release cuts a release of elector's Go modules in one step and
// rehearses it without publishing anything.
//
//	release prep  --repo=. --version=v0.1.0 [--date=2026-12-07]
//	release proxy --repo=. --version=v0.1.0 --out=DIR
//	release krew  --template=deploy/krew/elector.yaml --version=v0.1.0 --dist=DIR --out=FILE
//
// prep stamps CHANGELOG.md, makes every published nested module require
// the root module at the version with no replace directive (and go.sum
// lines for it), commits that as "Release vX.Y.Z", tags every published
// module at that commit (vX.Y.Z, ctrl/vX.Y.Z, cmd/kubectl-elector/vX.Y.Z),
// then commits the replace directives back for development. Users resolve
// the tagged go.mod files, which need no replace; Go ignores a
// dependency's replace anyway, and `go install pkg@version` refuses a
// module that has one.
//
// proxy writes a GOPROXY=file:// module proxy of the tagged modules, their
// zips made by golang.org/x/mod/zip from the tags as the Go module mirror
// makes them, so that the rehearsal (hack/release-rehearsal.sh) can go get
// and go install them from outside the repository. It refuses a tagged
// nested module whose go.mod still replaces the root or requires another
// version of it.
//
// krew renders the krew-release-bot template of the plugin manifest with
// the sha256 of the archives in --dist; every platform of the template
// must have its archive there.
//
// The image, after `elector-image push` (make image-push) pushed it by
// digest (image.go):
//
//	release registry    --addr-file=FILE   (the rehearsal's in-process registry)
//	release extract     --image=REPO@sha256:… --platform=linux/amd64 --file=/elector --out=FILE
//	release attach-sbom --image=REPO@sha256:… --sbom=FILE.cdx.json
//	release referrers   --image=REPO@sha256:… [--artifact-type=application/vnd.cyclonedx+json] [--out=FILE]
//	release keygen      --key=FILE --pub=FILE
//	release sign        --image=REPO@sha256:… --key=FILE
//	release verify      --image=REPO@sha256:… --pub=FILE
//	release pin         --image=REPO@sha256:… [--name=registry.example.com/elector] KUSTOMIZATION...
//
// attach-sbom pushes a CycloneDX SBOM as an OCI 1.1 referrer of the image
// (artifactType application/vnd.cyclonedx+json, subject the image index);
// referrers lists them. sign and verify make and check a cosign-compatible
// key-based signature (the simple-signing payload, signed by
// github.com/sigstore/sigstore's signature package, under the tag
// sha256-<hex>.sig), without a transparency log. pin rewrites the
// kustomizations' images: entry to the image by digest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// commands are the commands, for the usage messages.
const commands = "prep, proxy, krew, registry, extract, attach-sbom, referrers, keygen, sign, verify or pin"

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the step failed; the message says why
	exitUsage = 2 // bad flags or arguments
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "release: missing command: "+commands+" (release prep --version=v0.1.0)")
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "prep":
		err = runPrep(rest, stdout)
	case "proxy":
		err = runProxy(rest, stdout)
	case "krew":
		err = runKrew(rest, stdout)
	case "registry":
		err = runRegistry(rest, stdout)
	case "extract":
		err = runExtract(rest, stdout)
	case "attach-sbom":
		err = runAttachSBOM(rest, stdout)
	case "referrers":
		err = runReferrers(rest, stdout)
	case "keygen":
		err = runKeygen(rest, stdout)
	case "sign":
		err = runSign(rest, stdout)
	case "verify":
		err = runVerify(rest, stdout)
	case "pin":
		err = runPin(rest, stdout)
	default:
		fmt.Fprintf(stderr, "release: unknown command %q: use %s\n", cmd, commands)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "release %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "release %s: %v\n", args[0], err)
		return exitFail
	}
}

// usageError is a bad flag or argument (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
