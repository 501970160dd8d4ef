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

package elector_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
)

func TestConfigErrorsNameFieldValueAndRule(t *testing.T) {
	valid := func() elector.Config {
		return elector.Config{Leases: fake.NewLeases().Leases("ns"), Namespace: "ns", Name: "lock", Identity: "a"}
	}
	for _, tc := range []struct {
		name string
		mod  func(*elector.Config)
		want string
	}{
		{"no leases", func(c *elector.Config) { c.Leases = nil }, "invalid Leases <nil>: must be set"},
		{"no identity", func(c *elector.Config) { c.Identity = "" }, `invalid Identity "": must be non-empty`},
		{"huge identity", func(c *elector.Config) { c.Identity = strings.Repeat("x", 2000) }, "invalid Identity of 2000 bytes: must be at most 1024 bytes"},
		{"lease not above renew", func(c *elector.Config) { c.LeaseDuration = 10 * time.Second }, "invalid LeaseDuration 10s: must be greater than RenewDeadline (10s)"},
		{"renew not above 1.2 retry", func(c *elector.Config) { c.RenewDeadline = 2 * time.Second }, "invalid RenewDeadline 2s: must be greater than 1.2 × RetryPeriod (2s)"},
		{"negative retry", func(c *elector.Config) { c.RetryPeriod = -time.Second }, "invalid RetryPeriod -1s: must be positive"},
		{"fractional lease", func(c *elector.Config) { c.LeaseDuration = 15500 * time.Millisecond }, "invalid LeaseDuration 15.5s: must be a whole number of seconds"},
		{"stop grace too long", func(c *elector.Config) { c.StopGrace = 9 * time.Second }, "invalid StopGrace 9s: must be between 0 and RenewDeadline - RetryPeriod (8s)"},
		{"negative stop grace", func(c *elector.Config) { c.StopGrace = -time.Second }, "invalid StopGrace -1s"},
		{"api timeout too long", func(c *elector.Config) { c.APITimeout = 10 * time.Second }, "invalid APITimeout 10s: must be positive and below RenewDeadline (10s)"},
		{"empty name", func(c *elector.Config) { c.Name = "" }, `invalid Name "": must be a DNS-1123 subdomain`},
		{"upper-case name", func(c *elector.Config) { c.Name = "Lock" }, `invalid Name "Lock": must be a DNS-1123 subdomain`},
		{"name with underscore", func(c *elector.Config) { c.Name = "my_lock" }, `invalid Name "my_lock"`},
		{"empty namespace", func(c *elector.Config) { c.Namespace = "" }, `invalid Namespace "": must be a DNS-1123 label`},
		{"dotted namespace", func(c *elector.Config) { c.Namespace = "a.b" }, `invalid Namespace "a.b": must be a DNS-1123 label`},
		{"negative lease", func(c *elector.Config) { c.LeaseDuration = -15 * time.Second }, "invalid LeaseDuration -15s: must be greater than RenewDeadline (10s)"},
		{"negative renew", func(c *elector.Config) { c.RenewDeadline = -time.Second }, "invalid RenewDeadline -1s: must be greater than 1.2 × RetryPeriod (2s)"},
		{"retry too long for renew", func(c *elector.Config) { c.RetryPeriod = 9 * time.Second }, "invalid RenewDeadline 10s: must be greater than 1.2 × RetryPeriod (9s)"},
		{"stop grace at its limit", func(c *elector.Config) { c.StopGrace = 8 * time.Second }, "invalid StopGrace 8s: must be between 0 and RenewDeadline - RetryPeriod (8s)"},
		{"negative api timeout", func(c *elector.Config) { c.APITimeout = -time.Second }, "invalid APITimeout -1s: must be positive and below RenewDeadline (10s)"},
		{"name too long", func(c *elector.Config) { c.Name = strings.Repeat("a", 254) }, "must be a DNS-1123 subdomain: must be no more than 253 characters"},
		{"namespace too long", func(c *elector.Config) { c.Namespace = strings.Repeat("a", 64) }, "must be a DNS-1123 label: must be no more than 63 characters"},
		{"shared watch of another namespace", func(c *elector.Config) {
			c.Watch = elector.NewSharedWatch(fake.NewLeases().Leases("other"), "other", elector.SharedWatchOptions{})
		}, `invalid Watch other: must watch the Lease's namespace "ns"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			err := c.Validate()
			var ce *elector.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v, want *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %q, want it to contain %q", err, tc.want)
			}
			if _, err := elector.New(c); err == nil {
				t.Fatal("New accepted an invalid Config")
			}
		})
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestDefaultsAreValidForShortLeases: the defaults derived from a short
// but legal lease must pass validation (the default APITimeout once
// equalled the renew deadline and was rejected).
func TestDefaultsAreValidForShortLeases(t *testing.T) {
	for _, tc := range []struct{ lease, renew, retry time.Duration }{
		{2 * time.Second, time.Second, 500 * time.Millisecond},
		{2 * time.Second, 1500 * time.Millisecond, time.Second},
		{3 * time.Second, 2 * time.Second, time.Second},
	} {
		c := elector.Config{
			Leases: fake.NewLeases().Leases("ns"), Namespace: "ns", Name: "lock", Identity: "a",
			LeaseDuration: tc.lease, RenewDeadline: tc.renew, RetryPeriod: tc.retry,
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%v/%v/%v: Validate() = %v, want the defaults to fit", tc.lease, tc.renew, tc.retry, err)
		}
	}
}
