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

// Files renders every generated file, by its path under deploy/monitoring.
func Files() (map[string][]byte, error) {
	rules, err := RuleFile()
	if err != nil {
		return nil, err
	}
	pr, err := PrometheusRule()
	if err != nil {
		return nil, err
	}
	dash, err := DashboardJSON()
	if err != nil {
		return nil, err
	}
	tests, err := RuleTests()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"tests/rules_test.yaml": tests,
		"rules.yaml":            rules,
		"prometheusrule.yaml":   pr,
		"dashboard.json":        dash,
	}, nil
}
