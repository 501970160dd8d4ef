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
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
)

// Output formats of -o, as kubectl names them.
const (
	outputTable = ""
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
	outputName  = "name"
)

// leaseResource prefixes the lines of -o name, as kubectl prints them, so
// that they can be passed on to kubectl: kubectl get $(kubectl elector
// list -o name).
const leaseResource = "lease.coordination.k8s.io/"

// printFlags are kubectl's output flags of a listing command: -o,
// --no-headers and -l.
type printFlags struct {
	output    string
	noHeaders bool
	selector  string
}

// add registers the flags on cmd; -l only when the command lists by
// label.
func (p *printFlags) add(cmd *cobra.Command, withSelector bool) {
	cmd.Flags().StringVarP(&p.output, "output", "o", "", "output format: wide, json, yaml or name")
	cmd.Flags().BoolVar(&p.noHeaders, "no-headers", false, "print the table without its header line(s)")
	if withSelector {
		cmd.Flags().StringVarP(&p.selector, "selector", "l", "", "label selector on the Leases, as kubectl's -l (e.g. -l app=payments,tier!=batch)")
	}
}

// validate checks the flags' values: a usage error names the bad one.
func (p *printFlags) validate(cmd *cobra.Command) error {
	switch p.output {
	case outputTable, outputWide, outputJSON, outputYAML, outputName:
	default:
		return usageErr(cmd, "-o %q: want wide, json, yaml or name", p.output)
	}
	if p.selector != "" {
		if _, err := labels.Parse(p.selector); err != nil {
			return usageErr(cmd, "-l %q: %s", p.selector, oneLine(err))
		}
	}
	return nil
}

// structured reports -o json or yaml.
func (p *printFlags) structured() bool { return p.output == outputJSON || p.output == outputYAML }
