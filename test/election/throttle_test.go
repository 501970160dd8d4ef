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

package election

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector"
)

// throttler is a reverse proxy to the API server that, while on, answers
// every request with 429 Too Many Requests and a long Retry-After, as API
// Priority and Fairness does under load.
type throttler struct {
	on       atomic.Bool
	answered atomic.Int32
	srv      *httptest.Server
}

func newThrottler(t *testing.T) *throttler {
	t.Helper()
	target, err := url.Parse(cp.URL())
	if err != nil {
		t.Fatal(err)
	}
	th := &throttler{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // loopback test server
	th.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if th.on.Load() && r.URL.Query().Get("watch") != "true" {
			th.answered.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too many requests","reason":"TooManyRequests","code":429}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(th.srv.Close)
	return th
}

// client returns a Lease client of the env's ServiceAccount through the
// throttler.
func (th *throttler) client(t *testing.T, e *env) coordinationv1client.LeasesGetter {
	t.Helper()
	rc := rest.CopyConfig(e.sa)
	rc.Host = th.srv.URL
	rc.TLSClientConfig = rest.TLSClientConfig{Insecure: true}
	c, err := coordinationv1client.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestThrottledLeaderStopsByItsStopPoint: client-go retries a 429 after
// its Retry-After (here 30s, far beyond the renew deadline). Those retries
// must not hold a renewal past the leader's stop point: the leader cancels
// its work in time, and the follower takes over only after that.
func TestThrottledLeaderStopsByItsStopPoint(t *testing.T) {
	e := newEnv(t, true)
	th := newThrottler(t)
	a := e.start("a", func(c *elector.Config) { c.Leases = th.client(t, e).Leases(c.Namespace) })
	wait(t, a.started, "a to lead")
	b := e.start("b", nil)
	follows(t, b, "a")

	th.on.Store(true)
	throttled := time.Now() // a's last successful write was before this
	stopped := wait(t, a.stopped, "a to stop while throttled")
	t.Logf("a stopped %v after the throttling began (renew deadline %v, stop point %v); %d requests got 429",
		stopped.Sub(throttled).Round(time.Millisecond), renewDeadline, renewDeadline-stopGraceOf(renewDeadline), th.answered.Load())
	if stopped.Sub(throttled) >= renewDeadline {
		t.Fatalf("a stopped %v after its last possible renewal: a retried 429 held it past its renew deadline %v",
			stopped.Sub(throttled), renewDeadline)
	}
	if th.answered.Load() == 0 {
		t.Fatal("no request was throttled")
	}
	wait(t, b.started, "b to take over")
	e.checkNoOverlap()
}

// stopGraceOf is the library's default StopGrace for a renew deadline.
func stopGraceOf(renew time.Duration) time.Duration {
	return min(elector.DefaultStopGrace, (renew-retryPeriod)/2)
}
