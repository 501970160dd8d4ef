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
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// machineInfo describes where the benchmark ran.
type machineInfo struct {
	cpus      int
	cpuModel  string
	memTotal  string
	kernel    string
	goVersion string
	loadStart string
	loadEnd   string
}

func machine() machineInfo {
	m := machineInfo{
		cpus:      runtime.NumCPU(),
		cpuModel:  "unknown CPU",
		goVersion: runtime.Version(),
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		loadStart: loadAvg(),
	}
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.cpuModel = strings.TrimSpace(v)
			break
		}
	}
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			m.memTotal = strings.TrimSpace(v)
		}
	}
	return m
}

// loadAvg is the 1-, 5- and 15-minute load average.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// terminatedLeaseWatchers reads kube-apiserver's count of Lease watches it
// closed because the client did not keep up with the events
// (apiserver_terminated_watchers_total); -1 if unavailable.
func terminatedLeaseWatchers(ctx context.Context, kube kubernetes.Interface) int64 {
	raw, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return -1
	}
	return parseTerminatedWatchers(string(raw))
}

func parseTerminatedWatchers(metrics string) int64 {
	var n int64
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, "apiserver_terminated_watchers_total{") || !strings.Contains(l, `resource="leases"`) {
			continue
		}
		f := strings.Fields(l)
		var v float64
		if _, err := fmt.Sscan(f[len(f)-1], &v); err == nil {
			n += int64(v)
		}
	}
	return n
}
