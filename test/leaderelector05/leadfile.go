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
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// retryLock is how often a leader that found the lead file locked tries
// again, as the chaos actor does at every beat.
const retryLock = 20 * time.Millisecond

// leadFile is the overlap detector of --lead-file: an exclusive flock(2)
// held while this replica leads, on the file that the chaos actor locks
// too ($CHAOS_LOCK). flock locks belong to an open file description, so
// two openings of the file conflict even within one process.
type leadFile struct {
	path string
	f    *os.File
	log  *slog.Logger

	mu      sync.Mutex
	leading bool
	locked  bool
	tenure  int // counts lead calls, to end a stale retry loop
}

// openLeadFile opens (creating it) the file, as the actor does.
func openLeadFile(path string, log *slog.Logger) (*leadFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("unable to open the lead file: %w", err)
	}
	return &leadFile{path: path, f: f, log: log}, nil
}

// lead is called when this replica starts leading. It takes the lock
// without waiting; if another process holds it, it logs the overlap and
// keeps trying until it gets the lock or stop is called.
func (l *leadFile) lead(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = true
	l.tenure++
	if l.tryLockLocked() {
		return
	}
	l.log.Error(MsgOverlap, "path", l.path, "id", id)
	tenure := l.tenure
	go func() {
		t := time.NewTicker(retryLock)
		defer t.Stop()
		for range t.C {
			l.mu.Lock()
			if !l.leading || l.tenure != tenure || l.tryLockLocked() {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
		}
	}()
}

// tryLockLocked takes the flock without waiting and reports whether this
// replica holds it now. l.mu is held.
func (l *leadFile) tryLockLocked() bool {
	if l.locked {
		return true
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		l.locked = true
		l.log.Info(MsgLocked, "path", l.path)
		return true
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false
	default:
		l.log.Error("Unable to lock the lead file", "path", l.path, "err", err.Error())
		return false
	}
}

// stop is called when this replica stops leading: it releases the lock.
func (l *leadFile) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = false
	if !l.locked {
		return
	}
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN); err != nil {
		l.log.Error("Unable to unlock the lead file", "path", l.path, "err", err.Error())
		return
	}
	l.locked = false
	l.log.Info(MsgUnlocked, "path", l.path)
}
