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

package sharded

import (
	"context"
	"testing"
	"time"
)

// guard is a failure deadline for waits, not a timing assertion: the
// machine may be slow and shared.
const guard = 90 * time.Second

// testCtx is the test's context with the failure deadline.
func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}
