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
	"fmt"

	"github.com/spf13/cobra"

	"github.com/elector-dev/elector/internal/buildinfo"
)

// Set at build time, as for the sidecar (make build):
//
//	go build -ldflags "-X main.buildVersion=v0.1.0 -X main.buildCommit=$(git rev-parse HEAD)" .
var (
	buildVersion string
	buildCommit  string
)

// currentVersion is what --version prints, in the format of elector
// --version.
func currentVersion() buildinfo.Info { return buildinfo.Read(buildVersion, buildCommit) }

// versionOutput is `version -o json|yaml`, in the shape of kubectl
// version's clientVersion.
type versionOutput struct {
	ClientVersion versionInfo `json:"clientVersion"`
}

type versionInfo struct {
	GitVersion string `json:"gitVersion"`
	GitCommit  string `json:"gitCommit"`
	GoVersion  string `json:"goVersion"`
}

// versionCommand is `kubectl elector version`, the verb kubectl users
// know: the same line as --version, or -o json|yaml. It reads no
// kubeconfig.
func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o json|yaml]",
		Short: "Print the plugin's version",
		Long: `Print the version of kubectl-elector, its commit and the Go release it was
built with: the same line as kubectl elector --version, or a document with
-o json|yaml (clientVersion.gitVersion, as kubectl version prints). It
needs no kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			switch output {
			case "":
				_, err := fmt.Fprintf(a.stdout, "kubectl-elector %s\n", v)
				return err
			case outputJSON, outputYAML:
				return writeStructured(a.stdout, output, versionOutput{versionInfo{GitVersion: v.Version, GitCommit: v.Commit, GoVersion: v.Go}})
			}
			return usageErr(cmd, "-o %q: want json or yaml", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml")
	return cmd
}
