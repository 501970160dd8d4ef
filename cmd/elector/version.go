package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time, the one source of the version (make build, the
// Dockerfile and releases pass them):
//
//	go build -ldflags "-X main.buildVersion=v0.2.0 -X main.buildCommit=$(git rev-parse HEAD)" ./cmd/elector
//
// Builds with GOFLAGS=-buildvcs=false (as in some CI environments) carry no
// commit in their build info, hence ldflags. Without them, `go install
// ...@v0.2.0` still reports its module version from the build info.
var (
	buildVersion string
	buildCommit  string
)

// versionInfo is what --version prints and the User-Agent carries.
type versionInfo struct {
	Version string // a semver tag, or "(devel)"
	Commit  string // a git commit, or "unknown"
	Go      string // the Go version it was built with
}

func (v versionInfo) String() string {
	return fmt.Sprintf("%s (commit %s, %s)", v.Version, v.Commit, v.Go)
}

// currentVersion reads the ldflags, else the build info.
func currentVersion() versionInfo {
	v := versionInfo{Version: buildVersion, Commit: buildCommit, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
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

// version is the version alone, for the User-Agent.
func version() string { return currentVersion().Version }
