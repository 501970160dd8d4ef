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

package elector

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/elector-dev/elector/internal/outage"
)

// deniedLogInterval rate-limits the error log of a denial that is being
// retried: once when it starts, then at most once a minute, so that a Role
// deleted for an hour does not flood the logs of a thousand elections.
const deniedLogInterval = time.Minute

// Err reports what currently keeps this candidate from taking part in the
// election normally, or nil: the last request failed and none has
// succeeded since. A *ForbiddenError (test with errors.As) names the
// missing permission and carries the Role that fixes it; other errors say
// why the API server could not be reached. Run retries either kind (see
// Config.ForbiddenTimeout for the exception at start); Err is for health
// endpoints, status pages and logs.
func (e *Elector) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.problem
}

// accepted records that the API server accepted a request: later denials
// are transient, and the current problem, if any, is over.
func (e *Elector) accepted() {
	e.hadAccess.Store(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.problem == nil {
		return
	}
	var fe *ForbiddenError
	if errors.As(e.problem, &fe) {
		e.log.Info("Permission restored")
	}
	e.problem = nil
	e.metrics.setDenied(false)
}

// failed records a failed request and returns it as a clear error (a
// *ForbiddenError for a denial). Denials are logged here, rate-limited;
// callers log other failures themselves.
func (e *Elector) failed(err error, verb string) error {
	denied := isDenied(err)
	err = e.apiError(err, verb)
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.problem = err
	if !denied {
		return err
	}
	e.metrics.setDenied(true)
	if !e.deniedLogged.IsZero() && now.Sub(e.deniedLogged) < deniedLogInterval {
		return err
	}
	e.deniedLogged = now
	attrs := []any{"error", err, "retryingFor", "ever"}
	if !e.hadAccess.Load() {
		attrs[3] = e.cfg.ForbiddenTimeout.String()
	}
	var fe *ForbiddenError
	if errors.As(err, &fe) {
		attrs = append(attrs, "fix", fe.Fix)
	}
	e.log.Error("Permission denied; retrying", attrs...)
	return err
}

// retrying logs a failed request that is being retried, one line per
// attempt: at debug level for an outage (logged once by the Elector's
// outage.Tracker when it starts and once when it ends) and for a denial
// (logged by failed, rate-limited), at info level for anything else.
func (e *Elector) retrying(msg string, err error, attrs ...any) {
	e.retryingAs(err, msg, err, attrs...)
}

// retryingAs is retrying with the level chosen by raw, the error as the
// API server returned it, and err logged.
func (e *Elector) retryingAs(raw error, msg string, err error, attrs ...any) {
	level := outage.Level(raw)
	if isDenied(raw) {
		level = slog.LevelDebug
	}
	e.log.Log(context.Background(), level, msg, append([]any{"error", err}, attrs...)...) //nolint:sloglint // callers pass a fixed message
}

// denied handles a denial seen by this Run. It returns the error that ends
// Run when the denial is final: this Elector never had a request accepted
// and the denials have lasted ForbiddenTimeout.
func (r *round) denied(err error, verb string) error {
	err = r.e.failed(err, verb)
	if r.deniedSince.IsZero() {
		r.deniedSince = r.e.clk.Now()
		if !r.e.hadAccess.Load() {
			r.deniedT = timerAt(r.e.clk, r.deniedSince.Add(r.e.cfg.ForbiddenTimeout))
		}
	}
	r.deniedErr = err
	return r.finalDenial()
}

// finalDenial returns the denial that ends Run, or nil.
func (r *round) finalDenial() error {
	if r.deniedSince.IsZero() || r.e.hadAccess.Load() {
		return nil
	}
	if r.e.clk.Since(r.deniedSince) < r.e.cfg.ForbiddenTimeout {
		return nil
	}
	return r.deniedErr
}

// accepted ends a streak of denials of this Run.
func (r *round) accepted() {
	r.e.accepted()
	r.deniedSince, r.deniedErr = time.Time{}, nil
	if r.deniedT != nil {
		r.deniedT.Stop()
		r.deniedT = nil
	}
}
