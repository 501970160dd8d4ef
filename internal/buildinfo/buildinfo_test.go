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

package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	goV := runtime.Version()
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}
	tests := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		ok              bool
		want            string
	}{
		{"ldflags win", "v0.2.0", "deadbeef", bi, true, "v0.2.0 (commit deadbeef, " + goV + ")"},
		{"build info", "", "", bi, true, "v0.3.0 (commit abc123, " + goV + ")"},
		{"nothing", "", "", nil, false, "(devel) (commit unknown, " + goV + ")"},
		{"empty build info", "", "", &debug.BuildInfo{}, true, "(devel) (commit unknown, " + goV + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(tt.version, tt.commit, tt.bi, tt.ok).String(); got != tt.want {
				t.Errorf("read() = %q, want %q", got, tt.want)
			}
		})
	}
}
