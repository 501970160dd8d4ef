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
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
)

func TestOutcome(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	lost := fmt.Errorf("%w: the Lease is now held by %q (token 9)", elector.ErrLeadershipLost, "pod-b")
	leaseDenied := &elector.ForbiddenError{Verb: "update", Resource: "leases.coordination.k8s.io", Namespace: "team-a", Name: "my-app", User: "system:serviceaccount:team-a:app"}

	tests := []struct {
		name      string
		ctx       context.Context
		err       error
		exec      bool
		code      int
		again     bool
		stderrHas string
	}{
		{"shutdown", cancelled, nil, false, ExitOK, false, ""},
		{"shutdown, exec", cancelled, nil, true, ExitOK, false, ""},
		{"command exited 0", live, nil, true, ExitOK, false, ""},
		{"command exited 3", live, fmt.Errorf("elector: leader function failed: %w", &exitCodeError{3}), true, 3, false, ""},
		{"lost, sidecar campaigns again", live, lost, false, ExitOK, true, ""},
		{"lost, exec exits", live, lost, true, ExitLost, false, ""},
		{"lost while shutting down", cancelled, lost, true, ExitOK, false, ""},
		{"overrun", live, fmt.Errorf("%w (%v)", elector.ErrStopOverrun, lost), false, ExitOverrun, false, ""}, //nolint:errorlint // as Run builds it
		{
			"lease 403", live, leaseDenied, false, ExitForbidden, false,
			`elector: ServiceAccount team-a/app lacks 1 permission in namespace team-a: update leases.coordination.k8s.io "my-app"`,
		},
		{"other error", live, errors.New(`elector: unable to create Lease: namespace "x" does not exist`), false, ExitFailure, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			a := &app{cfg: config{election: "my-app"}, log: slog.New(slog.DiscardHandler), stderr: &stderr}
			if tt.exec {
				a.super = &supervisor{}
			}
			code, again := a.outcome(tt.ctx, tt.err)
			if code != tt.code || again != tt.again {
				t.Errorf("outcome = %d, %v; want %d, %v", code, again, tt.code, tt.again)
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if first != tt.stderrHas {
				t.Errorf("stderr first line = %q, want %q", first, tt.stderrHas)
			}
			if tt.stderrHas != "" && (!strings.Contains(stderr.String(), "kind: Role") || strings.Contains(stderr.String(), "cluster-admin")) {
				t.Errorf("stderr lacks the Role:\n%s", stderr.String())
			}
		})
	}
}

func TestStopReason(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		exec bool
		want string
	}{
		{cancelled, nil, false, "shutting down"},
		{context.Background(), nil, true, "command exited with code 0"},
		{context.Background(), fmt.Errorf("wrapped: %w", &exitCodeError{2}), true, "command exited with code 2"},
		{context.Background(), elector.ErrLeadershipLost, false, "elector: leadership lost"},
	} {
		if got := stopReason(tc.ctx, tc.err, tc.exec); got != tc.want {
			t.Errorf("stopReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestRequiredPermissions(t *testing.T) {
	lease := rbac.LeaseRules("my-app")
	createEvents := rbac.Rule{Resource: "events", Verb: "create"}
	tests := []struct {
		name string
		cfg  config
		want []permissionSet
	}{
		{
			"minimal",
			config{election: "my-app", namespace: "team-a"},
			[]permissionSet{{"team-a", lease}},
		},
		{
			"events",
			config{election: "my-app", namespace: "team-a", events: true},
			[]permissionSet{{"team-a", append(append([]rbac.Rule{}, lease...), createEvents)}},
		},
		{
			"label, same namespace",
			config{election: "my-app", namespace: "team-a", labelKey: "k", podNamespace: "team-a"},
			[]permissionSet{{"team-a", append(append([]rbac.Rule{}, lease...), rbac.PodLabelRules()...)}},
		},
		{
			"label, other namespace",
			config{election: "my-app", namespace: "locks", labelKey: "k", podNamespace: "team-a"},
			[]permissionSet{{"locks", lease}, {"team-a", rbac.PodLabelRules()}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requiredPermissions(tt.cfg)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestUsernameFromToken(t *testing.T) {
	// header.payload.signature; payload {"iss":"x","sub":"system:serviceaccount:team-a:app"}
	token := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OnRlYW0tYTphcHAifQ.c2ln"
	if got := usernameFromToken(token); got != "system:serviceaccount:team-a:app" {
		t.Errorf("usernameFromToken = %q", got)
	}
	for _, bad := range []string{"", "opaque-token", "a.!!!.c", "a.bm90IGpzb24.c"} {
		if got := usernameFromToken(bad); got != "" {
			t.Errorf("usernameFromToken(%q) = %q, want empty", bad, got)
		}
	}
}

func TestUsernameFromConfig(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice", Organization: []string{"devs"}}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if got := usernameFromConfig(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CertData: certPEM}}); got != "alice" {
		t.Errorf("from client certificate: %q, want alice", got)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OnRlYW0tYTphcHAifQ.c2ln"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := usernameFromConfig(&rest.Config{BearerTokenFile: tokenFile}); got != "system:serviceaccount:team-a:app" {
		t.Errorf("from token file: %q", got)
	}
	if got := usernameFromConfig(&rest.Config{BearerToken: "opaque"}); got != "" {
		t.Errorf("from opaque token: %q, want empty", got)
	}
}
