package main

import "github.com/elector-dev/elector/internal/buildinfo"

// Set at build time, as for the sidecar (make build):
//
//	go build -ldflags "-X main.buildVersion=v0.2.0 -X main.buildCommit=$(git rev-parse HEAD)" .
var (
	buildVersion string
	buildCommit  string
)

// currentVersion is what --version prints, in the format of elector
// --version.
func currentVersion() buildinfo.Info { return buildinfo.Read(buildVersion, buildCommit) }
