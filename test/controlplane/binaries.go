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

package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Versions of the control-plane binaries. They must match the requirements of
// the test/kube module (a unit test checks this); they name the cache
// directory, so bumping them triggers a rebuild.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
)

// Environment variables understood by [Binaries].
const (
	// EnvKubeAPIServer is the path of a kube-apiserver binary to use instead
	// of the cached build.
	EnvKubeAPIServer = "ELECTOR_KUBE_APISERVER"
	// EnvEtcd is the path of an etcd binary to use instead of the cached
	// build.
	EnvEtcd = "ELECTOR_ETCD"
	// EnvCacheDir replaces the cache root, <os.UserCacheDir()>/elector/controlplane.
	EnvCacheDir = "ELECTOR_CACHE_DIR"
	// EnvKubeModule is the directory of the test/kube module, for when it
	// cannot be found relative to this package's source.
	EnvKubeModule = "ELECTOR_KUBE_MODULE"
)

const (
	kubeModulePath     = "github.com/elector-dev/elector/test/kube"
	apiserverBinary    = "kube-apiserver"
	etcdBinary         = "etcd"
	apiserverPackage   = "k8s.io/kubernetes/cmd/kube-apiserver"
	etcdPackage        = "./cmd/etcd"
	progressInterval   = 15 * time.Second
	lockPollInterval   = 500 * time.Millisecond
	buildOutputTailLen = 40
)

// Binaries returns the paths of the kube-apiserver and etcd binaries, building
// them if needed.
//
// The environment variables ELECTOR_KUBE_APISERVER and ELECTOR_ETCD, when set,
// name binaries to use as is. Otherwise the binaries live in
// <root>/k8s-<version>-etcd-<version>/, where root is ELECTOR_CACHE_DIR or
// <os.UserCacheDir()>/elector/controlplane. When that directory is missing,
// Binaries builds both binaries from the test/kube module with "go build",
// writing a compact progress report to out (which may be nil), and moves them
// into place atomically. A lock file serializes concurrent builds, for
// example from test packages run in parallel.
func Binaries(ctx context.Context, out io.Writer) (apiserver, etcd string, err error) {
	if out == nil {
		out = io.Discard
	}
	apiserver, etcd = os.Getenv(EnvKubeAPIServer), os.Getenv(EnvEtcd)
	for _, b := range []struct{ env, path string }{{EnvKubeAPIServer, apiserver}, {EnvEtcd, etcd}} {
		if b.path == "" {
			continue
		}
		if err := checkExecutable(b.path); err != nil {
			return "", "", fmt.Errorf("unable to use %s=%s: %w", b.env, b.path, err)
		}
	}
	if apiserver != "" && etcd != "" {
		return apiserver, etcd, nil
	}

	dir, err := binaryDir()
	if err != nil {
		return "", "", err
	}
	if !complete(dir) {
		if err := buildLocked(ctx, dir, out); err != nil {
			return "", "", err
		}
	}
	if apiserver == "" {
		apiserver = filepath.Join(dir, apiserverBinary)
	}
	if etcd == "" {
		etcd = filepath.Join(dir, etcdBinary)
	}
	return apiserver, etcd, nil
}

// binaryDir returns the versioned cache directory of the binaries.
func binaryDir() (string, error) {
	root := os.Getenv(EnvCacheDir)
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("unable to locate the user cache directory (set %s): %w", EnvCacheDir, err)
		}
		root = filepath.Join(cache, "elector", "controlplane")
	}
	return filepath.Join(root, fmt.Sprintf("k8s-%s-etcd-%s", KubernetesVersion, EtcdVersion)), nil
}

// complete reports whether dir holds both binaries.
func complete(dir string) bool {
	return checkExecutable(filepath.Join(dir, apiserverBinary)) == nil &&
		checkExecutable(filepath.Join(dir, etcdBinary)) == nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// buildLocked builds the binaries into dir while holding an exclusive lock, so
// that concurrent callers build once and the others wait and reuse the result.
func buildLocked(ctx context.Context, dir string, out io.Writer) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("unable to create the cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, dir+".lock", out)
	if err != nil {
		return err
	}
	defer unlock()

	// Another process may have finished the build while we waited.
	if complete(dir) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unable to remove the incomplete %s: %w", dir, err)
	}
	// Builds only run under the lock, so leftovers are from interrupted ones.
	if stale, err := filepath.Glob(filepath.Join(parent, ".build-*")); err == nil {
		for _, d := range stale {
			os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(parent, ".build-")
	if err != nil {
		return fmt.Errorf("unable to create a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	if err := build(ctx, tmp, dir, out); err != nil {
		return err
	}
	// MkdirTemp creates the directory private; the binaries are not secret.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("unable to make %s readable: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("unable to move the binaries into %s: %w", dir, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel
// the wait. The returned function releases the lock.
func lockFile(ctx context.Context, path string, out io.Writer) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("unable to open the lock file: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("unable to lock %s: %w", path, err)
		}
		if !waiting {
			waiting = true
			fmt.Fprintf(out, "waiting for another process to finish building the control plane (lock %s)...\n", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("unable to lock %s: %w", path, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}

// build runs "go build" in the test/kube module, writing both binaries into
// dir and a progress report to out. final is where dir will be moved.
func build(ctx context.Context, dir, final string, out io.Writer) error {
	module, err := kubeModuleDir()
	if err != nil {
		return err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("unable to find the go command to build the control plane: %w", err)
	}

	fmt.Fprintf(out, "building kube-apiserver %s and etcd %s into %s (first run only, ~10 min on 2 cores)...\n",
		KubernetesVersion, EtcdVersion, final)
	start := time.Now()

	cmd := exec.CommandContext(ctx, goCmd, "build", "-v", "-buildvcs=false",
		"-o", dir+string(filepath.Separator), apiserverPackage, etcdPackage)
	cmd.Dir = module
	// The module must be built on its own: a go.work of the caller would pull
	// k8s.io/kubernetes into the wrong graph or fail outright.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.WaitDelay = 5 * time.Second

	progress := newBuildProgress()
	cmd.Stdout = progress
	cmd.Stderr = progress

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(progressInterval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				fmt.Fprintf(out, "  ... %s (%s)\n", progress.summary(), since(start))
			}
		}
	})
	err = cmd.Run()
	close(done)
	wg.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("unable to build the control plane: %w", ctx.Err())
		}
		return fmt.Errorf("unable to build the control plane in %s: %w; last output:\n%s", module, err, progress.tail())
	}
	fmt.Fprintf(out, "built kube-apiserver and etcd in %s (%s)\n", since(start), progress.summary())
	return nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Second) }

// kubeModuleDir locates the test/kube module: ELECTOR_KUBE_MODULE, then
// ../kube relative to this source file, then a test/kube or kube directory in
// the working directory or one of its parents.
func kubeModuleDir() (string, error) {
	if dir := os.Getenv(EnvKubeModule); dir != "" {
		if err := checkKubeModule(dir); err != nil {
			return "", fmt.Errorf("unable to use %s=%s: %w", EnvKubeModule, dir, err)
		}
		return dir, nil
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "kube"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, "kube"), filepath.Join(dir, "test", "kube"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range candidates {
		if checkKubeModule(dir) == nil {
			return filepath.Clean(dir), nil
		}
	}
	return "", fmt.Errorf("unable to locate the %s module (set %s to its directory)", kubeModulePath, EnvKubeModule)
}

func checkKubeModule(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if strings.TrimSpace(first) != "module "+kubeModulePath {
		return fmt.Errorf("%s/go.mod is not module %s", dir, kubeModulePath)
	}
	return nil
}

// buildProgress consumes the output of "go build -v": it counts compiled
// packages and downloaded modules, and keeps the last lines for errors.
type buildProgress struct {
	mu         sync.Mutex
	partial    []byte
	packages   int
	downloads  int
	lastOutput []string
}

func newBuildProgress() *buildProgress { return &buildProgress{} }

// Write implements io.Writer.
func (p *buildProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *buildProgress) line(l string) {
	switch {
	case strings.HasPrefix(l, "go: downloading "):
		p.downloads++
	case l == "", strings.HasPrefix(l, "go: "), strings.HasPrefix(l, "#"), strings.ContainsAny(l, " \t:"):
		// Diagnostics, not package paths.
	default:
		p.packages++
	}
	p.lastOutput = append(p.lastOutput, l)
	if len(p.lastOutput) > buildOutputTailLen {
		p.lastOutput = p.lastOutput[1:]
	}
}

func (p *buildProgress) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf("compiled %d packages", p.packages)
	if p.downloads > 0 {
		s += fmt.Sprintf(", downloaded %d modules", p.downloads)
	}
	return s
}

func (p *buildProgress) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lastOutput
	if len(p.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(p.partial))
	}
	return indent(lines)
}
