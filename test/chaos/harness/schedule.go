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

package harness

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// Faults. Proxy faults apply to one candidate's connections; control-plane
// faults to everyone; process faults only to sidecar replicas.
const (
	// Blackhole: the target's connections hang; bytes flow again at heal.
	Blackhole Kind = "blackhole"
	// Latency: every byte to and from the target is delayed.
	Latency Kind = "latency"
	// Reset: the target's connections are reset, again and again, until heal.
	Reset Kind = "reset"
	// Partition: every candidate is blackholed.
	Partition Kind = "partition"
	// RestartAPIServer: kube-apiserver stops, and starts again at heal.
	RestartAPIServer Kind = "apiserver-restart"
	// RestartEtcd: etcd stops, and starts again at heal.
	RestartEtcd Kind = "etcd-restart"
	// Kill: SIGKILL of the target's elector process; it is restarted.
	Kill Kind = "kill"
	// KillReplica: SIGKILL of the elector, its watchdog and its command.
	KillReplica Kind = "kill-replica"
	// PauseElector: SIGSTOP of the elector process only (its command and
	// watchdog run on), as long as it likes; SIGCONT at heal.
	PauseElector Kind = "pause-elector"
	// PauseReplica: SIGSTOP of the elector, watchdog and command, shorter
	// than lease − renew deadline (the documented margin).
	PauseReplica Kind = "pause-replica"
	// RevokeRole: the candidates' RoleBinding is deleted, so that every
	// request is denied (403), and created again at heal: a Role being
	// replaced, or an API server whose authorization caches are empty.
	RevokeRole Kind = "revoke-role"
	// Throttle: the target's requests (not its watch) are answered 429
	// Too Many Requests with Retry-After, as API Priority and Fairness
	// answers under load, until heal. Library candidates only: it is
	// injected in the candidate's HTTP transport.
	Throttle Kind = "throttle"
)

// LibraryKinds are the faults for library candidates.
var LibraryKinds = []Kind{Blackhole, Latency, Reset, Partition, RestartAPIServer, RestartEtcd, RevokeRole, Throttle}

// SidecarKinds are the faults for sidecar replicas.
var SidecarKinds = []Kind{Blackhole, Latency, Reset, Kill, KillReplica, PauseElector, PauseReplica, RestartAPIServer, RevokeRole}

// Role picks a fault's target when it is injected.
type Role string

// The roles a fault can target.
const (
	Leader   Role = "leader"   // whoever acts as leader then (else any)
	Follower Role = "follower" // any other candidate
	All      Role = "all"
)

// Fault is one fault of an episode.
type Fault struct {
	Kind    Kind
	Target  Role
	Delay   time.Duration // after the start of the episode
	Latency time.Duration // for Latency
}

func (f Fault) String() string {
	s := string(f.Kind)
	if f.Target != All {
		s += "(" + string(f.Target) + ")"
	}
	if f.Kind == Latency {
		s += fmt.Sprintf("=%v", f.Latency)
	}
	if f.Delay > 0 {
		s += fmt.Sprintf("@+%v", f.Delay)
	}
	return s
}

// Episode is faults injected together, healed together after Hold.
type Episode struct {
	Faults []Fault
	Hold   time.Duration
}

func (e Episode) String() string {
	fs := make([]string, len(e.Faults))
	for i, f := range e.Faults {
		fs[i] = f.String()
	}
	return fmt.Sprintf("[%s for %v]", strings.Join(fs, " + "), e.Hold)
}

// Schedule is a reproducible sequence of episodes: the same seed gives the
// same schedule. Rates are the library candidates' clock rates.
type Schedule struct {
	Seed     uint64
	Episodes []Episode
	Rates    []float64
	Offsets  []time.Duration
}

func (s Schedule) String() string {
	eps := make([]string, len(s.Episodes))
	for i, e := range s.Episodes {
		eps[i] = e.String()
	}
	rates := make([]string, len(s.Rates))
	for i, r := range s.Rates {
		rates[i] = fmt.Sprintf("%.3f", r)
	}
	return fmt.Sprintf("seed %d: clocks [%s] %s", s.Seed, strings.Join(rates, " "), strings.Join(eps, " "))
}

// Generate makes a schedule of n episodes of the given kinds for
// candidates candidates with a lease of lease. rateBound is the
// documented clock-rate bound (0 for sidecars, whose clocks are real);
// rates are drawn within 90% of it.
func Generate(seed uint64, kinds []Kind, n, candidates int, lease, margin time.Duration, rateBound float64) Schedule {
	rng := rand.New(rand.NewPCG(seed, 0x636861))
	s := Schedule{Seed: seed}
	for range candidates {
		rate := 1.0
		if rateBound > 0 {
			rate = 1 + (rng.Float64()*2-1)*0.9*rateBound
		}
		s.Rates = append(s.Rates, rate)
		s.Offsets = append(s.Offsets, time.Duration(rng.Int64N(int64(2*time.Hour)))-time.Hour)
	}
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	role := func() Role {
		if rng.IntN(3) < 2 {
			return Leader
		}
		return Follower
	}
	for range n {
		var ep Episode
		k := kinds[rng.IntN(len(kinds))]
		ep.Hold = between(lease/4, 2*lease)
		f := Fault{Kind: k, Target: role()}
		switch k {
		case Latency:
			f.Latency = between(50*time.Millisecond, 800*time.Millisecond)
			if rng.IntN(4) == 0 {
				f.Target = All
			}
		case Partition, RestartAPIServer, RestartEtcd:
			f.Target = All
			ep.Hold = between(0, lease)
		case RevokeRole:
			f.Target = All
		case Kill, KillReplica:
			ep.Hold = 0 // restarted at once, like a crash-looping container
		case PauseElector:
			ep.Hold = between(lease/2, 3*lease)
		case PauseReplica:
			ep.Hold = between(100*time.Millisecond, margin-300*time.Millisecond)
		}
		ep.Faults = append(ep.Faults, f)
		// Sometimes a second, proxy-level fault on someone else.
		if candidates > 2 && rng.IntN(3) == 0 && k != PauseReplica {
			g := Fault{
				Kind: []Kind{Blackhole, Latency, Reset}[rng.IntN(3)], Target: Follower,
				Delay: between(0, ep.Hold/2),
			}
			if g.Kind == Latency {
				g.Latency = between(50*time.Millisecond, 800*time.Millisecond)
			}
			ep.Faults = append(ep.Faults, g)
		}
		s.Episodes = append(s.Episodes, ep)
	}
	return s
}
