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
	"testing"
	"time"
)

func TestSplice(t *testing.T) {
	const h = "## Sharded controllers"
	report := "# B\n\n## Summary\n\nx\n\n" + h + ": 10 objects\n\nnew\n\n## How each number is measured\n\nm\n"
	old := "# B\n\n## Summary\n\nold summary\n\n" + h + ": 5 objects\n\nold\n\n## How each number is measured\n\nm\n"
	got, err := SpliceSections(old, report, []string{ScenarioShardedCtrl})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# B\n\n## Summary\n\nold summary\n\n" + h + ": 10 objects\n\nnew\n\n## How each number is measured\n\nm\n"; got != want {
		t.Errorf("replace: got\n%s\nwant\n%s", got, want)
	}
	noSection := "# B\n\n## Summary\n\nold summary\n\n## How each number is measured\n\nm\n"
	got, err = SpliceSections(noSection, report, []string{ScenarioShardedCtrl})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# B\n\n## Summary\n\nold summary\n\n" + h + ": 10 objects\n\nnew\n\n## How each number is measured\n\nm\n"; got != want {
		t.Errorf("insert: got\n%s\nwant\n%s", got, want)
	}
	if _, err := SpliceSections(old, "# B\n", []string{ScenarioShardedCtrl}); err == nil {
		t.Error("a report without the section spliced without error")
	}
}

func TestScCheck(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	recs := []scRec{
		{"a", "ns/x", at(0), at(20)},
		{"b", "ns/x", at(30), at(50)}, // moved, after a
		{"a", "ns/y", at(0), at(20)},
		{"b", "ns/y", at(10), at(30)}, // overlaps a's
		{"a", "ns/z", at(0), at(20)},
		{"a", "ns/z", at(200), at(220)}, // after the updates began
	}
	repeats, overlaps, moved := scCheck(recs, at(100))
	if repeats != 2 || overlaps != 1 || moved != 2 {
		t.Errorf("repeats, overlaps, moved = %d, %d, %d; want 2, 1, 2", repeats, overlaps, moved)
	}
}
