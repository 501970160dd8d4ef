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

// Package buildinfo is the version that elector's commands print with
// --version and send in their User-Agent, in one format for all of them:
//
//	v0.1.0 (commit 3f1c2e..., go1.26.0)
//
// Each command stamps its own main.buildVersion and main.buildCommit with
// ldflags (make build, the Dockerfile, releases) and passes them to Read.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what --version prints.
type Info struct {
	Version string // a semver tag, or "(devel)"
	Commit  string // a git commit, or "unknown"
	Go      string // the Go version it was built with
}

// String renders "VERSION (commit COMMIT, GOVERSION)".
func (v Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s)", v.Version, v.Commit, v.Go)
}

// Read returns the version and commit stamped by ldflags; where one is
// empty it falls back to the build info: the module version (set by `go
// install ...@v0.1.0`) and the VCS revision (absent when built with
// GOFLAGS=-buildvcs=false, as in some CI environments, hence ldflags).
func Read(version, commit string) Info {
	bi, ok := debug.ReadBuildInfo()
	return read(version, commit, bi, ok)
}

func read(version, commit string, bi *debug.BuildInfo, ok bool) Info {
	v := Info{Version: version, Commit: commit, Go: runtime.Version()}
	if v.Version == "" {
		v.Version = "(devel)"
		if ok && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
		if ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && s.Value != "" {
					v.Commit = s.Value
				}
			}
		}
	}
	return v
}
