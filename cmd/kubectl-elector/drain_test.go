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
	"context"
	"errors"
	"net/http"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// feed returns a fake watch that holds events (buffered: no goroutine)
// and is closed after them.
func feed(events ...watch.Event) *watch.FakeWatcher {
	w := watch.NewFakeWithChanSize(len(events), false)
	for _, e := range events {
		w.Action(e.Type, e.Object)
	}
	w.Stop()
	return w
}

func TestDrain(t *testing.T) {
	var seen []string
	f := func(l *coordinationv1.Lease) (bool, error) {
		seen = append(seen, l.ResourceVersion)
		return holderOf(l) == "pod-2", nil
	}
	w := feed(
		watch.Event{Type: watch.Bookmark, Object: newLease("n", "l", "", 0, rv(5))},
		watch.Event{Type: watch.Modified, Object: newLease("n", "l", "pod-1", 7, rv(6))},
		watch.Event{Type: watch.Modified, Object: newLease("n", "l", "pod-2", 8, rv(7))},
		watch.Event{Type: watch.Modified, Object: newLease("n", "l", "pod-2", 8, rv(8))},
	)
	done, last, err := drain(context.Background(), w, f)
	if !done || err != nil || last != "7" || len(seen) != 2 {
		t.Errorf("drain() = %t, %q, %v after %v; want done at resourceVersion 7, the bookmark skipped", done, last, err, seen)
	}

	// The watch ends: resume from the last version seen.
	done, last, err = drain(context.Background(), feed(watch.Event{Type: watch.Modified, Object: newLease("n", "l", "pod-1", 7, rv(9))}), f)
	if done || err != nil || last != "9" {
		t.Errorf("ended watch: drain() = %t, %q, %v; want resume from 9", done, last, err)
	}

	// 410 Gone: start over from the current state.
	gone := &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version"}
	done, last, err = drain(context.Background(), feed(watch.Event{Type: watch.Error, Object: gone}), f)
	if done || err != nil || last != "" {
		t.Errorf("410: drain() = %t, %q, %v; want a fresh start", done, last, err)
	}

	// The Lease deleted while waiting is the end.
	_, _, err = drain(context.Background(), feed(watch.Event{Type: watch.Deleted, Object: newLease("n", "l", "pod-1", 7)}), f)
	var ee *exitError
	if !asExit(err, &ee) || ee.msg != "the Lease was deleted while waiting" {
		t.Errorf("deleted: err = %v", err)
	}

	// Another error is returned.
	denied := &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "no"}
	if _, _, err = drain(context.Background(), feed(watch.Event{Type: watch.Error, Object: denied}), f); err == nil {
		t.Error("403 in the watch: no error")
	}

	// A cancelled context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	open := watch.NewFakeWithChanSize(0, false)
	defer open.Stop()
	if _, _, err := drain(ctx, open, f); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
