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

package suite

import (
	"fmt"
	"slices"
	"strings"
)

// sectionHeadings are the scenarios whose report is one section of its
// own, with nothing in the summary: SpliceSections can replace it alone.
var sectionHeadings = map[string]string{
	ScenarioOverload:    overloadHeading,
	ScenarioShardedCtrl: ShardedCtrlHeading,
}

// sectionAnchor is the section before which SpliceSections inserts a section the
// old report does not have.
const sectionAnchor = "## How each number is measured"

// SectionScenarios lists the scenarios SpliceSections supports.
func SectionScenarios() []string {
	var out []string
	for s := range sectionHeadings {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// SpliceSections returns old with the sections of scenarios replaced by those of
// report: a `--only` run regenerates its own section of BENCHMARKS.md and
// keeps every other number of the last full run.
func SpliceSections(old, report string, scenarios []string) (string, error) {
	for _, sc := range scenarios {
		heading, ok := sectionHeadings[sc]
		if !ok {
			return "", fmt.Errorf("scenario %s has no section of its own to replace", sc)
		}
		sec, ok := section(report, heading)
		if !ok {
			return "", fmt.Errorf("the %s run wrote no section %q", sc, strings.TrimSpace(heading))
		}
		if cur, ok := section(old, heading); ok {
			old = strings.Replace(old, cur, sec, 1)
			continue
		}
		i := strings.Index(old, "\n"+sectionAnchor)
		if i < 0 {
			old = strings.TrimRight(old, "\n") + "\n\n" + sec
			continue
		}
		old = old[:i+1] + sec + old[i+1:]
	}
	return old, nil
}

// section returns the text of the level-2 section of doc whose heading
// line starts with heading, up to the next level-2 heading.
func section(doc, heading string) (string, bool) {
	start := -1
	if strings.HasPrefix(doc, heading) {
		start = 0
	} else if i := strings.Index(doc, "\n"+heading); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		return "", false
	}
	end := len(doc)
	if j := strings.Index(doc[start+len(heading):], "\n## "); j >= 0 {
		end = start + len(heading) + j + 1
	}
	return doc[start:end], true
}
