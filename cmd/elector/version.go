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

import "github.com/elector-dev/elector/internal/buildinfo"

// Set at build time, the one source of the version (make build, the
// Dockerfile and releases pass them):
//
//	go build -ldflags "-X main.buildVersion=v0.1.0 -X main.buildCommit=$(git rev-parse HEAD)" ./cmd/elector
//
// Builds with GOFLAGS=-buildvcs=false (as in some CI environments) carry no
// commit in their build info, hence ldflags. Without them, `go install
// ...@v0.1.0` still reports its module version from the build info.
var (
	buildVersion string
	buildCommit  string
)

// currentVersion reads the ldflags, else the build info, in the format
// every elector command prints (package buildinfo).
func currentVersion() buildinfo.Info { return buildinfo.Read(buildVersion, buildCommit) }

// version is the version alone, for the User-Agent.
func version() string { return currentVersion().Version }
