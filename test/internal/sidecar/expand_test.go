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

package sidecar

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"ELECTION_NAME": "orders", "EMPTY": ""}
	for in, want := range map[string]string{
		"--election=$(ELECTION_NAME)":                        "--election=orders",
		"--leader-label=elector.dev/leader=$(ELECTION_NAME)": "--leader-label=elector.dev/leader=orders",
		"$(ELECTION_NAME)-$(ELECTION_NAME)":                  "orders-orders",
		"$(UNSET)":                                           "$(UNSET)",
		"$(EMPTY)x":                                          "x",
		"$$(ELECTION_NAME)":                                  "$(ELECTION_NAME)",
		"$$":                                                 "$",
		"a$b":                                                "a$b",
		"$(ELECTION_NAME":                                    "$(ELECTION_NAME",
		"$":                                                  "$",
		"$()":                                                "$()",
	} {
		if got := ExpandEnv(in, env); got != want {
			t.Errorf("ExpandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArgsExpandsFromTheContainersEnv(t *testing.T) {
	c := &corev1.Container{
		Command: []string{"/elector"},
		Args:    []string{"--election=$(ELECTION_NAME)", "--id=$(POD_NAME)", "--", "echo", "$(GREETING)"},
		Env: []corev1.EnvVar{
			{Name: "ELECTION_NAME", Value: "orders"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "GREETING", Value: "hello from $(ELECTION_NAME)"},
		},
	}
	want := []string{"--election=orders", "--id=$(POD_NAME)", "--", "echo", "hello from orders"}
	if got := ContainerArgs(c); !slices.Equal(got, want) {
		t.Errorf("ContainerArgs = %q, want %q", got, want)
	}
	if got := Args(c); !slices.Equal(got, append([]string{"/elector"}, want...)) {
		t.Errorf("Args = %q, want the command, then %q", got, want)
	}
}
