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

package monitoring

import (
	"fmt"
	"maps"
	"strings"
)

// The unit tests of the alerts, for promtool test rules: every alert has a
// case where it fires and one where it must not. The expected annotations
// are the rule's own, with the labels filled in, so that a broken template
// fails too.

type series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

type alertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	AlertName string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type testCase struct {
	Name        string      `yaml:"name"`
	Interval    string      `yaml:"interval"`
	InputSeries []series    `yaml:"input_series"`
	AlertTests  []alertTest `yaml:"alert_rule_test"`
}

type caseSpec struct {
	alert  string
	name   string
	series []series
	evals  []string          // eval times
	fires  map[string]string // labels of the expected alert (without severity); nil: none
}

const (
	ra = `job="elector",instance="a:8080",lease_namespace="ns",lease="web"`
	rb = `job="elector",instance="b:8080",lease_namespace="ns",lease="web"`
	ga = `job="elector",instance="a:8080",lease_namespace="ns",group="jobs"`
	gb = `job="elector",instance="b:8080",lease_namespace="ns",group="jobs"`
)

var (
	web  = map[string]string{"lease_namespace": "ns", "lease": "web"}
	jobs = map[string]string{"lease_namespace": "ns", "group": "jobs"}
)

func s(metric, labels, values string) series {
	return series{Series: metric + "{" + labels + "}", Values: values}
}

func up(instance, values string) series {
	return series{Series: `up{job="elector",instance="` + instance + `"}`, Values: values}
}

var cases = []caseSpec{
	{"ElectorNoLeader", "the leader stopped renewing: every replica's lease view expired", []series{
		up("a:8080", "1x40"), up("b:8080", "1x40"),
		s("elector_leader_known", ra, "1x8 0x32"), s("elector_leader_known", rb, "1x8 0x32"),
	}, []string{"5m"}, web},
	{"ElectorNoLeader", "every replica paused (SIGSTOP): scrapes fail, targets stay", []series{
		up("a:8080", "1x8 0x32"), up("b:8080", "1x8 0x32"),
		s("elector_leader_known", ra, "1x8 stale"), s("elector_leader_known", rb, "1x8 stale"),
	}, []string{"5m"}, web},
	{"ElectorNoLeader", "one replica knows the leader", []series{
		up("a:8080", "1x40"), up("b:8080", "1x40"),
		s("elector_leader_known", ra, "1x40"), s("elector_leader_known", rb, "1x8 0x32"),
	}, []string{"5m"}, nil},
	{"ElectorNoLeader", "scaled to zero: the targets are gone", []series{
		up("a:8080", "1x8 stale"), up("b:8080", "1x8 stale"),
		s("elector_leader_known", ra, "1x8 stale"), s("elector_leader_known", rb, "1x8 stale"),
	}, []string{"5m"}, nil},
	{"ElectorNoLeader", "a short gap, less than 30s", []series{
		up("a:8080", "1x40"), up("b:8080", "1x40"),
		s("elector_leader_known", ra, "1x8 0 1x31"), s("elector_leader_known", rb, "1x8 0 1x31"),
	}, []string{"2m15s", "2m30s", "3m"}, nil},

	{"ElectorMultipleLeaders", "two replicas claim to lead for minutes", []series{
		s("elector_is_leader", ra, "1x20"), s("elector_is_leader", rb, "0x4 1x16"),
	}, []string{"4m"}, web},
	{"ElectorMultipleLeaders", "a handoff seen with scrape skew: both 1 in one scrape", []series{
		s("elector_is_leader", ra, "1x10 0x10"), s("elector_is_leader", rb, "0x9 1x11"),
	}, []string{"2m30s", "2m45s", "3m", "3m15s", "3m30s", "4m", "5m"}, nil},

	{"ElectorLeadershipFlapping", "five takeovers of an expired lease in minutes", []series{
		s("elector_expired_takeovers_total", ra, "0+1x5 5x20"),
	}, []string{"5m"}, web},
	{"ElectorLeadershipFlapping", "two takeovers in an hour", []series{
		s("elector_expired_takeovers_total", ra, "0+1x2 2x20"),
	}, []string{"5m"}, nil},

	{"ElectorRenewalsFailing", "half the renewals fail", []series{
		s("elector_renew_failures_total", ra, "0+5x60"), s("elector_renew_duration_seconds_count", ra, "0+10x60"),
	}, []string{"12m"}, web},
	{"ElectorRenewalsFailing", "renewals succeed", []series{
		s("elector_renew_failures_total", ra, "0x60"), s("elector_renew_duration_seconds_count", ra, "0+10x60"),
	}, []string{"12m"}, nil},

	{"ElectorPermissionDenied", "denied for minutes", []series{
		s("elector_permission_denied", ra, "0 1x20"), s("elector_permission_denied", rb, "0 1x20"),
	}, []string{"2m"}, web},
	{"ElectorPermissionDenied", "denied once at start, while the API server's caches filled", []series{
		s("elector_permission_denied", ra, "1 0x20"),
	}, []string{"30s", "2m"}, nil},

	{"ElectorStopOverrun", "leader work overran", []series{
		s("elector_stop_overruns_total", ra, "0 0 1x20"),
	}, []string{"2m"}, web},
	{"ElectorStopOverrun", "no overrun", []series{
		s("elector_stop_overruns_total", ra, "0x20"),
	}, []string{"2m"}, nil},

	{"ElectorHandoffNotCompleted", "a request pending for minutes", []series{
		s("elector_handoff_pending", ra, "0 1x20"), s("elector_handoff_pending", rb, "0 1x20"),
	}, []string{"3m"}, web},
	{"ElectorHandoffNotCompleted", "a handoff done within a scrape", []series{
		s("elector_handoff_pending", ra, "0 1 0x20"),
	}, []string{"30s", "3m"}, nil},

	{"ElectorShardsUnowned", "a replica's shards were not taken over", []series{
		s("elector_shards", ga, "4x20"), s("elector_shards", gb, "4x5 stale"),
		s("elector_shards_owned", ga, "2x20"), s("elector_shards_owned", gb, "2x5 stale"),
	}, []string{"4m"}, jobs},
	{"ElectorShardsUnowned", "every shard owned", []series{
		s("elector_shards", ga, "4x20"), s("elector_shards", gb, "4x20"),
		s("elector_shards_owned", ga, "2x20"), s("elector_shards_owned", gb, "2x20"),
	}, []string{"4m"}, nil},

	{"ElectorShardsUnbalanced", "one replica owns 4, the other 1", []series{
		s("elector_shards_owned", ga, "4x40"), s("elector_shards_owned", gb, "1x40"),
	}, []string{"9m"}, jobs},
	{"ElectorShardsUnbalanced", "3 and 2", []series{
		s("elector_shards_owned", ga, "3x40"), s("elector_shards_owned", gb, "2x40"),
	}, []string{"9m"}, nil},
}

// expand fills the $labels of an annotation template in.
func expand(tmpl string, labels map[string]string) string {
	for k, v := range labels {
		tmpl = strings.ReplaceAll(tmpl, "{{ $labels."+k+" }}", v)
	}
	return tmpl
}

func rule(name string) (Rule, bool) {
	for _, g := range Groups() {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r, true
			}
		}
	}
	return Rule{}, false
}

// RuleTests renders the promtool unit tests (deploy/monitoring/tests).
func RuleTests() ([]byte, error) {
	var tcs []testCase
	for _, c := range cases {
		r, ok := rule(c.alert)
		if !ok {
			return nil, fmt.Errorf("test of unknown alert %s", c.alert)
		}
		tc := testCase{Name: c.alert + ": " + c.name, Interval: "15s", InputSeries: c.series}
		for _, at := range c.evals {
			t := alertTest{EvalTime: at, AlertName: c.alert, ExpAlerts: []expAlert{}}
			if c.fires != nil {
				l := maps.Clone(c.fires)
				maps.Copy(l, r.Labels)
				ann := map[string]string{}
				for k, v := range r.Annotations {
					ann[k] = expand(v, c.fires)
				}
				t.ExpAlerts = []expAlert{{ExpLabels: l, ExpAnnotations: ann}}
			}
			tc.AlertTests = append(tc.AlertTests, t)
		}
		tcs = append(tcs, tc)
	}
	return render("# promtool test rules: every alert of ../rules.yaml fires in one case and must not in another.\n# Generated by tools/monitoring (go run ./cmd/gen-monitoring); do not edit.\n", struct {
		RuleFiles          []string   `yaml:"rule_files"`
		EvaluationInterval string     `yaml:"evaluation_interval"`
		Tests              []testCase `yaml:"tests"`
	}{[]string{"../rules.yaml"}, "15s", tcs})
}

// alertsTested reports which alerts have a firing and a quiet case.
func alertsTested() (fires, quiet map[string]bool) {
	fires, quiet = map[string]bool{}, map[string]bool{}
	for _, c := range cases {
		if c.fires != nil {
			fires[c.alert] = true
		} else {
			quiet[c.alert] = true
		}
	}
	return fires, quiet
}
