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

// Command gen-monitoring writes elector's rule files and dashboard into a
// directory: go run ./cmd/gen-monitoring ../../deploy/monitoring
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/elector-dev/elector/tools/monitoring"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen-monitoring DIR (deploy/monitoring)")
		os.Exit(2)
	}
	files, err := monitoring.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-monitoring:", err)
		os.Exit(1)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(os.Args[1], name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen-monitoring: unable to write:", err)
			os.Exit(1)
		}
	}
}
