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
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeEnv is a Pod-less environment: no ServiceAccount namespace file,
// hostname "host-1", and commands "sleep" and "/bin/true" only.
func fakeEnv(vars map[string]string) environment {
	return environment{
		getenv: func(k string) string { return vars[k] },
		readFile: func(name string) ([]byte, error) {
			if v, ok := vars["file:"+name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		},
		hostname: func() (string, error) { return "host-1", nil },
		lookPath: func(name string) (string, error) {
			switch name {
			case "sleep", "/bin/true":
				return name, nil
			case "/etc/passwd":
				return "", &exec.Error{Name: name, Err: fs.ErrPermission}
			}
			return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
		},
		// "kubeconfig-ns:PATH" is the namespace of the current context of
		// the kubeconfig at PATH ("" for the default files).
		kubeconfigNamespace: func(path string) string { return vars["kubeconfig-ns:"+path] },
	}
}

var podEnv = map[string]string{envPodName: "pod-a", envPodNamespace: "team-a"}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{
			"no args", nil, nil, ExitUsage,
			"elector: --election is required: the name of the Lease to campaign for, e.g. --election=my-app",
		},
		{
			"empty election",
			[]string{"--election="},
			nil, ExitUsage,
			"elector: --election is required: the name of the Lease to campaign for, e.g. --election=my-app",
		},
		{
			"unknown flag",
			[]string{"--election=x", "--foo=1"},
			nil, ExitUsage,
			"elector: unknown flag --foo; run elector -h for the list of flags",
		},
		{
			"missing value",
			[]string{"--election=x", "--ttl"},
			nil, ExitUsage,
			"elector: flag --ttl needs a value, e.g. --ttl=VALUE",
		},
		{
			"bad syntax",
			[]string{"---election=x"},
			nil, ExitUsage,
			`elector: bad flag syntax "---election=x"; use --name=value or --name value`,
		},
		{
			"stray argument",
			[]string{"--election=x", "sleep"},
			nil, ExitUsage,
			`elector: unexpected argument "sleep"; to run a command while leading, put it after --: elector [flags] -- COMMAND [ARGS...]`,
		},
		{
			"nothing after --",
			[]string{"--election=x", "--"},
			nil, ExitUsage,
			"elector: no command after --; use elector [flags] -- COMMAND [ARGS...]",
		},
		{
			"bad election",
			[]string{"--election=My_Lock"},
			nil, ExitConfig,
			"elector: --election=My_Lock: invalid Lease name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
		},
		{
			"bad namespace",
			[]string{"--election=x", "--election-namespace=Team.A"},
			nil, ExitConfig,
			"elector: --election-namespace=Team.A: invalid namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
		},
		{
			"bad ttl",
			[]string{"--election=x", "--ttl=abc"},
			nil, ExitConfig,
			"elector: --ttl=abc: invalid duration; use a Go duration such as 10s",
		},
		{
			"ttl without unit",
			[]string{"--election=x", "--ttl", "10"},
			nil, ExitConfig,
			"elector: --ttl=10: invalid duration; use a Go duration such as 10s",
		},
		{
			"ttl too short",
			[]string{"--election=x", "--ttl=2s"},
			nil, ExitConfig,
			"elector: --ttl=2s: must be at least 3s, elector's shortest lease (leader-elector:0.5 accepted shorter ones); use --ttl=3s, and when migrating from 0.5 Pods with a shorter --ttl read docs/migrating-from-leader-elector.md first",
		},
		{
			"negative ttl",
			[]string{"--election=x", "--ttl=-10s"},
			nil, ExitConfig,
			"elector: --ttl=-10s: must be at least 3s, elector's shortest lease (leader-elector:0.5 accepted shorter ones); use --ttl=3s, and when migrating from 0.5 Pods with a shorter --ttl read docs/migrating-from-leader-elector.md first",
		},
		{
			"fractional ttl",
			[]string{"--election=x", "--ttl=10500ms"},
			nil, ExitConfig,
			"elector: --ttl=10500ms: must be a whole number of seconds (the Lease stores seconds), such as 10s",
		},
		{
			"bad http",
			[]string{"--election=x", "--http=4444"},
			nil, ExitConfig,
			"elector: --http=4444: invalid listen address (missing port in address); use HOST:PORT such as :4444 or 127.0.0.1:0",
		},
		{
			"bad http port",
			[]string{"--election=x", "--http=:http"},
			nil, ExitConfig,
			`elector: --http=:http: invalid port "http"; use a number from 0 to 65535`,
		},
		{
			"http port too large",
			[]string{"--election=x", "--http=:70000"},
			nil, ExitConfig,
			`elector: --http=:70000: invalid port "70000"; use a number from 0 to 65535`,
		},
		{
			"bad probe address",
			[]string{"--election=x", "--http=:4444", "--health-probe-bind-address=8081"},
			nil, ExitConfig,
			"elector: --health-probe-bind-address=8081: invalid listen address (missing port in address); use HOST:PORT such as :8081 or 127.0.0.1:0",
		},
		{
			"bad metrics port",
			[]string{"--election=x", "--metrics-bind-address=:metrics"},
			nil, ExitConfig,
			`elector: --metrics-bind-address=:metrics: invalid port "metrics"; use a number from 0 to 65535`,
		},
		{
			"metrics on the http address",
			[]string{"--election=x", "--http=:4444", "--metrics-bind-address=:4444"},
			nil, ExitConfig,
			"elector: --metrics-bind-address=:4444: the same address as --http; use another port, or omit the flag to serve these endpoints on --http",
		},
		{
			"probes and metrics on one address",
			[]string{"--election=x", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8081"},
			nil, ExitConfig,
			"elector: --metrics-bind-address=:8081: the same address as --health-probe-bind-address; use another port",
		},
		{
			"kube-api-qps not a number",
			[]string{"--election=x", "--kube-api-qps=fast"},
			nil, ExitConfig,
			"elector: --kube-api-qps=fast: must be a number of requests per second above 0 and at most 10000, such as 20",
		},
		{
			"kube-api-qps zero",
			[]string{"--election=x", "--kube-api-qps=0"},
			nil, ExitConfig,
			"elector: --kube-api-qps=0: must be a number of requests per second above 0 and at most 10000, such as 20",
		},
		{
			"kube-api-qps negative",
			[]string{"--election=x", "--kube-api-qps=-1"},
			nil, ExitConfig,
			"elector: --kube-api-qps=-1: must be a number of requests per second above 0 and at most 10000, such as 20",
		},
		{
			"kube-api-qps NaN",
			[]string{"--election=x", "--kube-api-qps=NaN"},
			nil, ExitConfig,
			"elector: --kube-api-qps=NaN: must be a number of requests per second above 0 and at most 10000, such as 20",
		},
		{
			"kube-api-qps too large",
			[]string{"--election=x", "--kube-api-qps=1e9"},
			nil, ExitConfig,
			"elector: --kube-api-qps=1e9: must be a number of requests per second above 0 and at most 10000, such as 20",
		},
		{
			"kube-api-burst zero",
			[]string{"--election=x", "--kube-api-burst=0"},
			nil, ExitConfig,
			"elector: --kube-api-burst=0: must be a whole number from 1 to 100000, such as 30",
		},
		{
			"kube-api-burst fractional",
			[]string{"--election=x", "--kube-api-burst=2.5"},
			nil, ExitConfig,
			"elector: --kube-api-burst=2.5: must be a whole number from 1 to 100000, such as 30",
		},
		{
			"kube-api-burst without a value",
			[]string{"--election=x", "--kube-api-burst"},
			nil, ExitUsage,
			"elector: flag --kube-api-burst needs a value, e.g. --kube-api-burst=VALUE",
		},
		{
			"bad max-watchers",
			[]string{"--election=x", "--max-watchers=lots"},
			nil, ExitConfig,
			"elector: --max-watchers=lots: must be a whole number from 1 to 10000",
		},
		{
			"zero max-watchers",
			[]string{"--election=x", "--max-watchers=0"},
			nil, ExitConfig,
			"elector: --max-watchers=0: must be a whole number from 1 to 10000",
		},
		{
			"max-watchers too large",
			[]string{"--election=x", "--max-watchers=10001"},
			nil, ExitConfig,
			"elector: --max-watchers=10001: must be a whole number from 1 to 10000",
		},
		{
			"empty id",
			[]string{"--election=x", "--id="},
			nil, ExitConfig,
			"elector: --id is empty; pass a name unique among the replicas, such as the Pod name",
		},
		{
			"long id",
			[]string{"--election=x", "--id=" + strings.Repeat("a", 1025)},
			nil, ExitConfig,
			"elector: --id of 1025 bytes is too long; use at most 1024 bytes",
		},
		{
			"bad bool",
			[]string{"--election=x", "--use-cluster-credentials=maybe"},
			nil, ExitConfig,
			"elector: --use-cluster-credentials=maybe: invalid boolean; use --use-cluster-credentials=true or --use-cluster-credentials=false",
		},
		{
			"bad log format",
			[]string{"--election=x", "--log-format=xml"},
			nil, ExitConfig,
			"elector: --log-format=xml: must be text or json",
		},
		{
			"bad log level",
			[]string{"--election=x", "--log-level=loud"},
			nil, ExitConfig,
			"elector: --log-level=loud: must be debug, info, warn or error",
		},
		{
			"empty kubeconfig",
			[]string{"--election=x", "--kubeconfig="},
			nil, ExitConfig,
			"elector: --kubeconfig is empty; pass the path of a kubeconfig file, or omit the flag to use in-cluster credentials",
		},
		{
			"label without =",
			[]string{"--election=x", "--leader-label=leader"},
			podEnv, ExitConfig,
			"elector: --leader-label=leader: must be KEY=VALUE, such as --leader-label=elector.dev/leader=true",
		},
		{
			"label bad key",
			[]string{"--election=x", "--leader-label=a/b/c=true"},
			podEnv, ExitConfig,
			`elector: --leader-label=a/b/c=true: invalid label key "a/b/c": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
		},
		{
			"label bad value",
			[]string{"--election=x", "--leader-label=leader=yes please"},
			podEnv, ExitConfig,
			`elector: --leader-label=leader=yes please: invalid label value "yes please": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
		},
		{
			"label without POD_NAME",
			[]string{"--election=x", "--leader-label=leader=true"},
			map[string]string{envPodNamespace: "team-a"},
			ExitConfig,
			"elector: --leader-label needs the Pod's name in $POD_NAME; add it with the Downward API (env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}])",
		},
		{
			"label without namespace",
			[]string{"--election=x", "--leader-label=leader=true"},
			map[string]string{envPodName: "pod-a"},
			ExitConfig,
			"elector: --leader-label needs the Pod's namespace in $POD_NAMESPACE; add it with the Downward API (env: [{name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}])",
		},
		{
			"grace without command",
			[]string{"--election=x", "--grace=1s"},
			nil, ExitUsage,
			"elector: --grace only applies to a command run while leading: elector --election=x --grace=1s -- COMMAND",
		},
		{
			"bad grace",
			[]string{"--election=x", "--grace=soon", "--", "sleep", "1"},
			nil, ExitConfig,
			"elector: --grace=soon: invalid duration; use a Go duration such as 2s",
		},
		{
			"zero grace",
			[]string{"--election=x", "--grace=0s", "--", "sleep", "1"},
			nil, ExitConfig,
			"elector: --grace=0s: must be positive",
		},
		{
			"grace too long",
			[]string{"--election=x", "--grace=3s", "--", "sleep", "1"},
			nil, ExitConfig,
			"elector: --grace=3s: must be shorter than 2s (--ttl/5, the time from losing the lease to the renew deadline); lower --grace or raise --ttl to at least 16s",
		},
		{
			"unknown old lock",
			[]string{"--election=x", "--migrate-from=leases"},
			nil, ExitConfig,
			"elector: --migrate-from=leases: must be endpoints (leader-elector:0.5) or configmaps",
		},
		{
			"bad old lock namespace",
			[]string{"--election=x", "--migrate-from=endpoints", "--migrate-namespace=Default"},
			nil, ExitConfig,
			"elector: --migrate-namespace=Default: invalid namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
		},
		{
			"old lock namespace alone",
			[]string{"--election=x", "--migrate-namespace=default"},
			nil, ExitUsage,
			"elector: --migrate-namespace only applies with --migrate-from=endpoints or --migrate-from=configmaps",
		},
		{
			"ttl of 1s, accepted by 0.5",
			[]string{"--election=x", "--ttl=1s"},
			nil, ExitConfig,
			"elector: --ttl=1s: must be at least 3s, elector's shortest lease (leader-elector:0.5 accepted shorter ones); use --ttl=3s, and when migrating from 0.5 Pods with a shorter --ttl read docs/migrating-from-leader-elector.md first",
		},
		{
			"invalid namespace in the kubeconfig context",
			[]string{"--election=x"},
			map[string]string{"kubeconfig-ns:": "Team_A"},
			ExitConfig,
			`elector: the kubeconfig's current context names namespace "Team_A": invalid namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'); fix the context or pass --election-namespace`,
		},
		{
			"ttl too long",
			[]string{"--election=x", "--ttl=2h"},
			nil, ExitConfig,
			"elector: --ttl=2h: must be at most 1h0m0s; a leader that vanishes blocks the election for one ttl",
		},
		{
			"grace too long for ttl",
			[]string{"--election=x", "--ttl=4s", "--grace=1s", "--", "sleep", "1"},
			nil, ExitConfig,
			"elector: --grace=1s: must be shorter than 800ms (--ttl/5, the time from losing the lease to the renew deadline); lower --grace or raise --ttl to at least 6s",
		},
		{
			"command not found",
			[]string{"--election=x", "--", "no-such-cmd"},
			nil, ExitConfig,
			`elector: command "no-such-cmd": not found in $PATH; use an absolute path or install it in the image`,
		},
		{
			"command not executable",
			[]string{"--election=x", "--", "/etc/passwd"},
			nil, ExitConfig,
			`elector: command "/etc/passwd": not executable (permission denied)`,
		},
	}
	if len(tests) < 15 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, fakeEnv(tt.env))
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseConfig(%q) = %v, want a usageError", tt.args, err)
			}
			if ue.Error() != tt.msg {
				t.Errorf("message\n got: %s\nwant: %s", ue.Error(), tt.msg)
			}
			if ue.code != tt.code {
				t.Errorf("exit code = %d, want %d", ue.code, tt.code)
			}
			if strings.Contains(ue.Error(), "\n") {
				t.Errorf("message is not one line: %q", ue.Error())
			}
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig([]string{"--election=my-app"}, fakeEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		election:      "my-app",
		namespace:     "default",
		identity:      "host-1",
		leaseDuration: 10 * time.Second,
		renewDeadline: 6 * time.Second,
		retryPeriod:   1333333334 * time.Nanosecond, // 2×10s/15, rounded up
		stopGrace:     2 * time.Second,
		grace:         time.Second,
		heartbeat:     250 * time.Millisecond,
		events:        true,
		logFormat:     "text",
		maxWatchers:   16,
		kubeAPIQPS:    20,
		kubeAPIBurst:  30,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("parseConfig defaults\n got: %+v\nwant: %+v", c, want)
	}
}

// The derived timings satisfy the library's rules for every allowed ttl:
// lease > renew > 1.2 × retry, stop budget < renew − retry, grace < stop budget.
func TestDerivedTimings(t *testing.T) {
	for ttl := minTTL; ttl <= 120*time.Second; ttl += time.Second {
		c, err := parseConfig([]string{"--election=x", "--ttl=" + ttl.String()}, fakeEnv(nil))
		if err != nil {
			t.Fatalf("ttl %v: %v", ttl, err)
		}
		switch {
		case c.leaseDuration <= c.renewDeadline:
			t.Errorf("ttl %v: lease %v <= renew %v", ttl, c.leaseDuration, c.renewDeadline)
		case float64(c.renewDeadline) <= 1.2*float64(c.retryPeriod):
			t.Errorf("ttl %v: renew %v <= 1.2 × retry %v", ttl, c.renewDeadline, c.retryPeriod)
		case c.stopGrace >= c.renewDeadline-c.retryPeriod:
			t.Errorf("ttl %v: stop budget %v >= renew − retry", ttl, c.stopGrace)
		case c.grace >= c.stopGrace:
			t.Errorf("ttl %v: grace %v >= stop budget %v", ttl, c.grace, c.stopGrace)
		case c.renewDeadline <= time.Second:
			t.Errorf("ttl %v: renew %v leaves no room for the 1s API timeout", ttl, c.renewDeadline)
		case c.retryPeriod*15 < 2*ttl:
			// client-go's defaults (15s/10s/2s) write once per 2/15 of
			// the lease; the sidecar's leader must not write more often.
			t.Errorf("ttl %v: retry %v renews more often than client-go's 2/15 of the lease (%v)", ttl, c.retryPeriod, 2*ttl/15)
		case c.renewDeadline-c.stopGrace < 2*c.retryPeriod:
			t.Errorf("ttl %v: fewer than two renewals fit before the stop point", ttl)
		}
	}
}

func TestParseConfigValues(t *testing.T) {
	saFile := "file:" + serviceAccountNamespaceFile
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c config)
	}{
		{
			"0.5 image flags, space separated",
			[]string{"--election", "elect-nginx", "--http", "0.0.0.0:4444", "--id", "me", "--ttl", "20s", "--election-namespace", "ns1", "--use-cluster-credentials"},
			nil,
			func(t *testing.T, c config) {
				if c.election != "elect-nginx" || c.httpAddr != "0.0.0.0:4444" || c.identity != "me" || c.leaseDuration != 20*time.Second || c.namespace != "ns1" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			"client rate limit",
			[]string{"--election=x", "--kube-api-qps=50.5", "--kube-api-burst=100"},
			nil,
			func(t *testing.T, c config) {
				if c.kubeAPIQPS != 50.5 || c.kubeAPIBurst != 100 {
					t.Errorf("kubeAPIQPS %v, kubeAPIBurst %d; want 50.5 and 100", c.kubeAPIQPS, c.kubeAPIBurst)
				}
			},
		},
		{
			"separate probe and metrics addresses",
			[]string{"--election=x", "--http=127.0.0.1:4040", "--health-probe-bind-address=:8081", "--metrics-bind-address=0"},
			nil,
			func(t *testing.T, c config) {
				if c.httpAddr != "127.0.0.1:4040" || c.probeAddr != ":8081" || c.metricsAddr != addrOff {
					t.Errorf("http %q, probes %q, metrics %q; want 127.0.0.1:4040, :8081, 0", c.httpAddr, c.probeAddr, c.metricsAddr)
				}
			},
		},
		{
			"port 0 everywhere",
			[]string{"--election=x", "--http=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0"},
			nil,
			func(t *testing.T, c config) {
				if c.probeAddr != "127.0.0.1:0" || c.metricsAddr != "127.0.0.1:0" {
					t.Errorf("probes %q, metrics %q; want 127.0.0.1:0 each (a free port each)", c.probeAddr, c.metricsAddr)
				}
			},
		},
		{
			"migration from 0.5",
			[]string{"--election=elect-nginx-deploy", "--migrate-from=endpoints"},
			nil,
			func(t *testing.T, c config) {
				if c.migrateFrom != "endpoints" || c.migrateNamespace != "default" {
					t.Errorf("migrateFrom %q in %q, want endpoints in default (0.5's default namespace)", c.migrateFrom, c.migrateNamespace)
				}
				sets := requiredPermissions(c)
				if len(sets) != 1 || !strings.Contains(fmt.Sprint(sets[0].rules), `update endpoints "elect-nginx-deploy"`) {
					t.Errorf("permissions %v, want update on the old Endpoints", sets)
				}
			},
		},
		{
			// Issue 19: a 0.5 user keeps --election-namespace=X; 0.5
			// kept its lock in X, so the old lock is looked for there,
			// not in "default" (two leaders once the printed Role for
			// "default" was applied).
			"migration with the 0.5 user's --election-namespace",
			[]string{"--election=elect-nginx-deploy", "--election-namespace=locks", "--migrate-from=endpoints"},
			podEnv,
			func(t *testing.T, c config) {
				if c.namespace != "locks" || c.migrateNamespace != "locks" {
					t.Errorf("Lease in %q, old lock in %q; want both in locks, where 0.5 with the same flags kept its lock", c.namespace, c.migrateNamespace)
				}
				sets := requiredPermissions(c)
				if len(sets) != 1 || sets[0].namespace != "locks" || !strings.Contains(fmt.Sprint(sets[0].rules), `update endpoints "elect-nginx-deploy"`) {
					t.Errorf("permissions %v, want one set in locks with update on the old Endpoints", sets)
				}
			},
		},
		{
			"migration without --election-namespace in a Pod",
			[]string{"--election=elect-nginx-deploy", "--migrate-from=configmaps"},
			podEnv,
			func(t *testing.T, c config) {
				// elector's Lease defaults to the Pod's namespace, 0.5's
				// lock to "default".
				if c.namespace != "team-a" || c.migrateNamespace != "default" {
					t.Errorf("Lease in %q, old lock in %q; want team-a and default", c.namespace, c.migrateNamespace)
				}
			},
		},
		{
			"migration, --migrate-namespace wins",
			[]string{"--election=x", "--election-namespace=locks", "--migrate-from=endpoints", "--migrate-namespace=old"},
			nil,
			func(t *testing.T, c config) {
				if c.namespace != "locks" || c.migrateNamespace != "old" {
					t.Errorf("Lease in %q, old lock in %q; want locks and old", c.namespace, c.migrateNamespace)
				}
			},
		},
		{
			"migration, old lock elsewhere",
			[]string{"--election=x", "--election-namespace=app", "--migrate-from=endpoints", "--migrate-namespace=default"},
			nil,
			func(t *testing.T, c config) {
				sets := requiredPermissions(c)
				if len(sets) != 2 || sets[1].namespace != "default" {
					t.Errorf("permissions %v, want a second set in namespace default", sets)
				}
			},
		},
		{
			"max-watchers",
			[]string{"--election=x", "--max-watchers=7"},
			nil,
			func(t *testing.T, c config) {
				if c.maxWatchers != 7 {
					t.Errorf("maxWatchers = %d, want 7", c.maxWatchers)
				}
			},
		},
		{
			"single dash",
			[]string{"-election=x", "-use-cluster-credentials=true"},
			nil,
			func(t *testing.T, c config) {
				if c.election != "x" {
					t.Errorf("election = %q", c.election)
				}
			},
		},
		{
			"namespace from service account",
			[]string{"--election=x"},
			map[string]string{saFile: "team-sa\n", envPodNamespace: "team-env"},
			func(t *testing.T, c config) {
				if c.namespace != "team-sa" {
					t.Errorf("namespace = %q, want team-sa", c.namespace)
				}
			},
		},
		{
			"namespace from env",
			[]string{"--election=x"},
			map[string]string{envPodNamespace: "team-env"},
			func(t *testing.T, c config) {
				if c.namespace != "team-env" {
					t.Errorf("namespace = %q, want team-env", c.namespace)
				}
			},
		},
		{
			"namespace from the kubeconfig context outside a cluster",
			[]string{"--election=x"},
			map[string]string{"kubeconfig-ns:": "team-kc"},
			func(t *testing.T, c config) {
				if c.namespace != "team-kc" {
					t.Errorf("namespace = %q, want team-kc (the current context's)", c.namespace)
				}
			},
		},
		{
			"namespace from the context of --kubeconfig",
			[]string{"--election=x", "--kubeconfig=/k"},
			map[string]string{"kubeconfig-ns:/k": "team-k", "kubeconfig-ns:": "team-other"},
			func(t *testing.T, c config) {
				if c.namespace != "team-k" {
					t.Errorf("namespace = %q, want team-k (the context of --kubeconfig's)", c.namespace)
				}
			},
		},
		{
			"the Pod's namespace before the kubeconfig context",
			[]string{"--election=x"},
			map[string]string{saFile: "team-sa", "kubeconfig-ns:": "team-kc"},
			func(t *testing.T, c config) {
				if c.namespace != "team-sa" {
					t.Errorf("namespace = %q, want team-sa", c.namespace)
				}
			},
		},
		{
			"--election-namespace before the kubeconfig context",
			[]string{"--election=x", "--election-namespace=flag"},
			map[string]string{"kubeconfig-ns:": "team-kc"},
			func(t *testing.T, c config) {
				if c.namespace != "flag" {
					t.Errorf("namespace = %q, want flag", c.namespace)
				}
			},
		},
		{
			"identity from POD_NAME",
			[]string{"--election=x"},
			map[string]string{envPodName: "pod-7"},
			func(t *testing.T, c config) {
				if c.identity != "pod-7" {
					t.Errorf("identity = %q", c.identity)
				}
			},
		},
		{
			"leader label",
			[]string{"--election=x", "--election-namespace=locks", "--leader-label=elector.dev/leader=true"},
			podEnv,
			func(t *testing.T, c config) {
				if c.labelKey != "elector.dev/leader" || c.labelValue != "true" || c.podName != "pod-a" || c.podNamespace != "team-a" || c.namespace != "locks" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			"exec mode",
			[]string{"--election=x", "--ttl=20s", "--grace=3s", "--", "sleep", "--ttl=1", "--"},
			nil,
			func(t *testing.T, c config) {
				if !reflect.DeepEqual(c.command, []string{"sleep", "--ttl=1", "--"}) || c.grace != 3*time.Second {
					t.Errorf("command %q grace %v", c.command, c.grace)
				}
			},
		},
		{
			"events off, json logs",
			[]string{"--election=x", "--events=false", "--log-format=json", "--log-level=debug", "--skip-permission-check"},
			nil,
			func(t *testing.T, c config) {
				if c.events || c.logFormat != "json" || c.logLevel.String() != "DEBUG" || !c.skipPermissionCheck {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, fakeEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// Value errors print one line and no usage; -h prints the usage on stdout.
func TestRunBadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runWith(context.Background(), []string{"--election=x", "--ttl=abc"}, &stdout, &stderr, fakeEnv(nil))
	if code != ExitConfig {
		t.Errorf("exit code = %d, want %d", code, ExitConfig)
	}
	if got, want := stderr.String(), "elector: --ttl=abc: invalid duration; use a Go duration such as 10s\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}

	stdout.Reset()
	stderr.Reset()
	if code := runWith(context.Background(), []string{"-h"}, &stdout, &stderr, fakeEnv(nil)); code != ExitOK {
		t.Errorf("-h: exit code = %d", code)
	}
	for _, want := range []string{"--election", "--leader-label", "--grace", "Exit codes:", "/watch"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("-h: stderr = %q", stderr.String())
	}
}

// A 0.5 user's --ttl below elector's minimum: exit 3 and one line that
// names the smallest accepted value and the migration guide.
func TestRunTTLBelowMinimum(t *testing.T) {
	for _, ttl := range []string{"1s", "2s"} {
		var stdout, stderr bytes.Buffer
		code := runWith(context.Background(), []string{"--election=x", "--ttl=" + ttl}, &stdout, &stderr, fakeEnv(nil))
		if code != ExitConfig {
			t.Errorf("--ttl=%s: exit code %d, want %d", ttl, code, ExitConfig)
		}
		got := stderr.String()
		if strings.Count(got, "\n") != 1 || !strings.Contains(got, "use --ttl=3s") || !strings.Contains(got, "docs/migrating-from-leader-elector.md") {
			t.Errorf("--ttl=%s: stderr %q, want one line naming --ttl=3s and docs/migrating-from-leader-elector.md", ttl, got)
		}
	}
}

// The new flags' bad values, through run: one line on stderr, exit code 3
// (invalid flag value), nothing on stdout and no listener opened.
func TestRunBadRateLimitAndAddresses(t *testing.T) {
	for _, args := range [][]string{
		{"--kube-api-qps=0"},
		{"--kube-api-burst=-3"},
		{"--health-probe-bind-address=localhost"},
		{"--metrics-bind-address=:99999"},
	} {
		var stdout, stderr bytes.Buffer
		code := runWith(context.Background(), append([]string{"--election=x"}, args...), &stdout, &stderr, fakeEnv(nil))
		name, _, _ := strings.Cut(strings.TrimPrefix(args[0], "--"), "=")
		if code != ExitConfig || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "elector: --"+name+"=") || stdout.Len() != 0 {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q; want %d and one line naming --%s", args, code, stdout.String(), stderr.String(), ExitConfig, name)
		}
	}
}
