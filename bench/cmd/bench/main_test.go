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

import "testing"

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "make bench"},
		{[]string{"--out", "../BENCHMARKS.md"}, "make bench"},
		{[]string{"--quick", "--out=x.md"}, "make bench BENCHFLAGS='--quick'"},
		{[]string{"--only", "overload", "--splice", "--out", "../BENCHMARKS.md"}, "make bench-overload"},
		{[]string{"--only", "overload", "--splice", "--out", "../BENCHMARKS.md", "--overload-flood", "20s"}, "make bench-overload BENCHFLAGS='--overload-flood 20s'"},
		{[]string{"--only=overload", "--splice"}, "make bench-overload"},
		{[]string{"--only", "overload"}, "make bench BENCHFLAGS='--only overload'"},
	}
	for _, tt := range tests {
		if got := commandLine(tt.args); got != tt.want {
			t.Errorf("commandLine(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
