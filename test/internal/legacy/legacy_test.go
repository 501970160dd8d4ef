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

package legacy_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/internal/legacy"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestOneLeaderAndItsRecord starts three replicas at once: exactly one
// leads, the Endpoints object carries 0.5's record naming it, and every
// replica's GET (any path) names it, as 0.5 answered.
func TestOneLeaderAndItsRecord(t *testing.T) {
	const election = "elect-nginx-deploy"
	n := setup(t, election)
	recs := watchRecords(t, n, election)
	lf := leadFile(t)
	begin := time.Now()
	rs := startAll(t, n, election, lf, "pod-a", "pod-b", "pod-c")
	l := oneLeader(t, n, election, rs...)
	t.Logf("%s leads, agreed by all %d replicas after %s", l.ID, len(rs), ms(time.Since(begin)))

	c := ctx(t)
	// The acquiring write: 0.5 created the object without a record, so
	// the first holder counts one transition (0+1).
	first := nextRecord(t, c, recs, "naming the leader", func(r legacy.RecordChange) bool { return r.HolderIdentity != "" })
	if first.HolderIdentity != l.ID || first.LeaseDurationSeconds != int(ttl/time.Second) || first.LeaderTransitions != 1 ||
		first.AcquireTime.IsZero() || first.RenewTime.Before(&first.AcquireTime) {
		t.Errorf("first record %+v, want holder %s, leaseDurationSeconds %d, leaderTransitions 1, acquireTime <= renewTime",
			first.Record, l.ID, int(ttl/time.Second))
	}
	// A renewal: 0.5 writes leaderTransitions 0 and keeps acquireTime.
	renewal := nextRecord(t, c, recs, "renewed", func(r legacy.RecordChange) bool { return r.ResourceVersion != first.ResourceVersion })
	if renewal.HolderIdentity != l.ID || renewal.LeaseDurationSeconds != int(ttl/time.Second) || renewal.LeaderTransitions != 0 ||
		!renewal.AcquireTime.Equal(&first.AcquireTime) {
		t.Errorf("renewal %+v, want holder %s, leaseDurationSeconds %d, leaderTransitions 0, acquireTime %v",
			renewal.Record, l.ID, int(ttl/time.Second), first.AcquireTime)
	}
	// The record as stored parses as exactly 0.5's five fields.
	e, err := admin(t).CoreV1().Endpoints(n.Name).Get(c, election, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s = %s", legacy.AnnotationKey, e.Annotations[legacy.AnnotationKey])
	if _, err := legacy.ParseRecord(e.Annotations[legacy.AnnotationKey]); err != nil {
		t.Error(err)
	}
	if len(e.Subsets) != 0 {
		t.Errorf("the Endpoints object has subsets %v", e.Subsets)
	}

	for _, r := range rs {
		if r != l && r.Leading() {
			t.Errorf("%s leads too", r.ID)
		}
		for _, path := range []string{"/", "/isLeader", "/a/b?c=d"} {
			resp, err := r.Get(c, path)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"name":"` + l.ID + `"}`; resp.Status != http.StatusOK || string(resp.Body) != want {
				t.Errorf("GET %s on %s: %d %s, want 200 %s", path, r.ID, resp.Status, resp.Body, want)
			}
			if strings.Contains(resp.ContentType, "json") {
				t.Errorf("GET %s on %s: Content-Type %q; 0.5 set none (Go sniffed text/plain)", path, r.ID, resp.ContentType)
			}
		}
		if !strings.Contains(r.Stdout(), l.ID+" is the leader\n") {
			t.Errorf("%s did not print %q on stdout:\n%s", r.ID, l.ID+" is the leader", r.Stdout())
		}
	}
	if _, err := l.WaitFor(c, legacy.MsgLocked, 1); err != nil {
		t.Fatal(err)
	}
	if l.Count(legacy.MsgLocked) != 1 {
		t.Errorf("the leader locked the lead file %d times, want 1", l.Count(legacy.MsgLocked))
	}
	noOverlaps(t, rs...)
}

// TestSIGTERMIgnoredSIGKILLTakenOver: SIGTERM does not end the leader, it
// keeps renewing past a lease duration; after SIGKILL the other replica
// takes the lock once the lease has expired, counting one more transition.
func TestSIGTERMIgnoredSIGKILLTakenOver(t *testing.T) {
	const election = "takeover"
	n := setup(t, election)
	lf := leadFile(t)
	rs := startAll(t, n, election, lf, "pod-a", "pod-b")
	l := oneLeader(t, n, election, rs...)
	f := rs[0]
	if f == l {
		f = rs[1]
	}
	recs := watchRecords(t, n, election)
	c := ctx(t)

	// SIGTERM, as the kubelet sends when the Pod is deleted: ignored.
	termAt := time.Now()
	if err := l.Term(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitFor(c, legacy.MsgIgnoredSignal, 1); err != nil {
		t.Fatal(err)
	}
	// Renewals go on for longer than a lease duration, with no other
	// holder: were the leader stopped, the follower would lead by then.
	var last legacy.RecordChange
	renewals := 0
	for time.Since(termAt) < ttl+ttl/2 {
		r := nextRecord(t, c, recs, "after SIGTERM", func(legacy.RecordChange) bool { return true })
		if r.HolderIdentity != l.ID {
			t.Fatalf("after SIGTERM to %s the record names %q: %+v", l.ID, r.HolderIdentity, r.Record)
		}
		if r.Seen.After(termAt) {
			renewals++
		}
		last = r
	}
	if renewals < 2 {
		t.Errorf("%d renewals in the %s after SIGTERM", renewals, ms(time.Since(termAt)))
	}
	if code := l.ExitCode(); code != -1 || !l.Leading() || f.Leading() || f.Count(legacy.MsgStarted) != 0 {
		t.Fatalf("%s SIGTERMed %s ago: exit code %d (-1: running), leading %t; %s leading %t",
			l.ID, ms(time.Since(termAt)), code, l.Leading(), f.ID, f.Leading())
	}
	if name, err := f.LeaderName(c); err != nil || name != l.ID {
		t.Errorf("GET / on %s names %q (%v), want %s", f.ID, name, err, l.ID)
	}
	t.Logf("%s ignored SIGTERM and renewed %d times in %s", l.ID, renewals, ms(time.Since(termAt)))

	// SIGKILL: the follower takes over once the lease has expired.
	killAt := time.Now()
	l.Kill()
	if code := l.ExitCode(); code != 128+int(syscall.SIGKILL) {
		t.Errorf("%s exited with code %d after SIGKILL", l.ID, code)
	}
	ledAt, err := f.WaitLeading(c, true)
	if err != nil {
		t.Fatal(err)
	}
	// The record that names f, and the last one of l before it.
	prev := last
	took := nextRecord(t, c, recs, "naming "+f.ID, func(r legacy.RecordChange) bool {
		if r.HolderIdentity != f.ID {
			prev = r
			return false
		}
		return true
	})
	t.Logf("takeover after SIGKILL: %s leads %s after %s was killed, its record seen after %s (ttl %s; 0.5's default ttl 10s)",
		f.ID, ms(ledAt.Sub(killAt)), l.ID, ms(took.Seen.Sub(killAt)), ttl)
	if prev.HolderIdentity != l.ID || took.LeaderTransitions != prev.LeaderTransitions+1 {
		t.Errorf("takeover record %+v: leaderTransitions %d, want %d (the last record of %s: %+v)",
			took.Record, took.LeaderTransitions, prev.LeaderTransitions+1, l.ID, prev.Record)
	}
	if took.LeaseDurationSeconds != int(ttl/time.Second) || took.AcquireTime.Equal(&prev.AcquireTime) {
		t.Errorf("takeover record %+v after %+v", took.Record, prev.Record)
	}
	if ledAt.Sub(killAt) < ttl/4 {
		// Not a timing assertion but a lower bound that only a lease not
		// waited out breaks: the leader's last renewal was about ttl/4
		// before the kill, and the follower waits a lease from when it
		// saw it.
		t.Errorf("%s led %s after the kill, well within the lease (%s)", f.ID, ms(ledAt.Sub(killAt)), ttl)
	}
	if name, err := f.LeaderName(c); err != nil || name != f.ID {
		t.Errorf("GET / on %s names %q (%v), want itself", f.ID, name, err)
	}
	noOverlaps(t, rs...)
}

// TestRecordNotReleasedOnExit: a killed leader leaves its record as it
// was (client-go's ReleaseOnCancel would write an empty holder), and a new
// replica waits out the lease before it takes it.
func TestRecordNotReleasedOnExit(t *testing.T) {
	const election = "no-release"
	n := setup(t, election)
	c := ctx(t)
	a := start(t, n, election, "pod-a", "")
	if _, err := a.WaitLeading(c, true); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	after, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	if after.HolderIdentity != "pod-a" || after.LeaseDurationSeconds != int(ttl/time.Second) {
		t.Fatalf("record after %s was killed: %+v, want it still held by pod-a for %s", a.ID, after, ttl)
	}
	// Nothing writes it any more.
	time.Sleep(ttl / 2)
	again, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != after.ResourceVersion {
		t.Errorf("the record changed after its holder died: %+v, then %+v", after, again)
	}

	startAt := time.Now()
	b := start(t, n, election, "pod-b", "")
	if _, err := b.WaitFor(c, legacy.MsgCurrentLeader, 1); err != nil {
		t.Fatal(err)
	}
	if name, err := b.LeaderName(c); err != nil || name != "pod-a" {
		t.Errorf("GET / on a new replica names %q (%v), want the dead holder pod-a, as 0.5 reported", name, err)
	}
	ledAt, err := b.WaitLeading(c, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a new replica took the dead leader's record %s after it started (ttl %s)", ms(ledAt.Sub(startAt)), ttl)
	if ledAt.Sub(startAt) < ttl {
		t.Errorf("%s led %s after it started, before a lease duration (%s)", b.ID, ms(ledAt.Sub(startAt)), ttl)
	}
	rec, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != "pod-b" || (rec.LeaderTransitions != after.LeaderTransitions+1 && rec.LeaderTransitions != 0) {
		t.Errorf("record %+v after %+v", rec, after)
	}
}

// TestOverlapReported: a replica that starts leading while another process
// holds the lead file (here the test, as the chaos actor would) reports
// the overlap, leads on as 0.5 would, and takes the lock once it is free.
func TestOverlapReported(t *testing.T) {
	const election = "overlap"
	n := setup(t, election)
	c := ctx(t)
	lf := leadFile(t)
	f, err := os.OpenFile(lf, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	a := start(t, n, election, "pod-a", lf)
	if _, err := a.WaitLeading(c, true); err != nil {
		t.Fatal(err)
	}
	ev, err := a.WaitFor(c, legacy.MsgOverlap, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ev.Line, "level=ERROR") || !strings.Contains(ev.Line, "OVERLAP") {
		t.Errorf("overlap line %q", ev.Line)
	}
	if name, err := a.LeaderName(c); err != nil || name != "pod-a" {
		t.Errorf("GET / names %q (%v), want pod-a: it leads on", name, err)
	}
	if n := a.Count(legacy.MsgLocked); n != 0 {
		t.Errorf("locked a held lead file")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitFor(c, legacy.MsgLocked, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("the leader does not hold the lead file: flock = %v", err)
	}
	a.Kill()
	// The kernel releases the flock of a killed leader.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("the lead file is still locked after the leader was killed: %v", err)
	}
}

// TestForbiddenExitsAsIn05 runs a replica whose ServiceAccount has no
// Role: it exits 255 with 0.5's message, the one in the seed.
func TestForbiddenExitsAsIn05(t *testing.T) {
	const election = "elect-nginx-deploy"
	settle(t)
	m := legacy.Manifests(election)
	m.Role, m.RoleBinding = nil, nil
	ns := nsName(t)
	n, err := sidecar.Apply(ctx(t), cp, ns, m, tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, n, election, "pod-a", "")
	code, err := a.Wait(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `failed to create election: endpoints \"` + election + `\" is forbidden: User \"system:serviceaccount:` + ns + `:` + legacy.ServiceAccount + `\" cannot get resource \"endpoints\"`
	if code != legacy.ExitFatal || !strings.Contains(a.Output(), want) {
		t.Errorf("exit code %d, want %d, and the output to contain %s:\n%s", code, legacy.ExitFatal, want, a.Output())
	}
}

// TestMessagesMatchTheStandIn checks that the Msg constants of package
// legacy are the stand-in's.
func TestMessagesMatchTheStandIn(t *testing.T) {
	dir, err := legacy.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		legacy.MsgStarting, legacy.MsgServing, legacy.MsgCurrentLeader, legacy.MsgCampaigning,
		legacy.MsgObservedLeader, legacy.MsgStarted, legacy.MsgStopped, legacy.MsgIgnoredSignal, legacy.MsgLocked,
		legacy.MsgUnlocked, legacy.MsgFatal, legacy.MsgOverlap,
	} {
		if !strings.Contains(string(src), `= "`+m+`"`) {
			t.Errorf("test/leaderelector05/main.go has no message %q", m)
		}
	}
	if !strings.Contains(string(src), "exitFatal = 255") {
		t.Error("test/leaderelector05/main.go: exit code 255 not found")
	}
}

func TestParseRecordIs05s(t *testing.T) {
	rec, err := legacy.ParseRecord(`{"holderIdentity":"nginx-deploy-5ff9c9d8c7-hcbct","leaseDurationSeconds":10,"acquireTime":"2024-03-03T14:39:09Z","renewTime":"2024-03-03T14:47:23Z","leaderTransitions":0}`)
	if err != nil || rec.HolderIdentity != "nginx-deploy-5ff9c9d8c7-hcbct" || rec.LeaseDurationSeconds != 10 ||
		rec.RenewTime.Sub(rec.AcquireTime.Time) != 8*time.Minute+14*time.Second {
		t.Errorf("the seed's record: %+v, %v", rec, err)
	}
	// A later client-go's record (Kubernetes 1.31+) is not 0.5's.
	if _, err := legacy.ParseRecord(`{"holderIdentity":"a","leaseDurationSeconds":10,"acquireTime":null,"renewTime":null,"leaderTransitions":0,"strategy":"OldestEmulationVersion"}`); err == nil {
		t.Error("a record with a strategy parsed as 0.5's")
	}
}

// TestCampaignsAgainAfterLoss: a leader that sees another holder in the
// record stops leading once its renew deadline has passed, unlocks the
// lead file, reports the other holder, and campaigns again, as 0.5 looped:
// it leads again once that holder's lease has expired.
func TestCampaignsAgainAfterLoss(t *testing.T) {
	const election = "campaign-again"
	n := setup(t, election)
	c := ctx(t)
	a := start(t, n, election, "pod-a", leadFile(t))
	if _, err := a.WaitLeading(c, true); err != nil {
		t.Fatal(err)
	}
	before, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	// Another holder, as a replica that does not see pod-a (an elector in
	// migration mode that misjudged the lock, a partition) would write.
	now := metav1.Now()
	intruder := legacy.Record{
		HolderIdentity: "intruder", LeaseDurationSeconds: int(ttl / time.Second),
		AcquireTime: now, RenewTime: now, LeaderTransitions: before.LeaderTransitions + 1,
	}
	wroteAt := time.Now()
	writeRecord(t, c, n, election, intruder)

	lostAt, err := a.WaitLeading(c, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitFor(c, legacy.MsgCampaigning, 2); err != nil {
		t.Fatal(err)
	}
	if a.Count(legacy.MsgUnlocked) != 1 {
		t.Errorf("the lead file was unlocked %d times, want 1", a.Count(legacy.MsgUnlocked))
	}
	if name, err := a.LeaderName(c); err != nil || name != "intruder" {
		t.Errorf("GET / names %q (%v) after the loss, want intruder", name, err)
	}
	ledAt, err := a.WaitLeading(c, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod-a stopped leading %s after another holder was written, and led again %s after the write (ttl %s)",
		ms(lostAt.Sub(wroteAt)), ms(ledAt.Sub(wroteAt)), ttl)
	if ledAt.Sub(wroteAt) < ttl {
		t.Errorf("pod-a took the lock %s after another holder was written, within its lease (%s)", ms(ledAt.Sub(wroteAt)), ttl)
	}
	if _, err := a.WaitFor(c, legacy.MsgLocked, 2); err != nil {
		t.Fatal(err)
	}
	if a.Count(legacy.MsgStarted) != 2 || a.Count(legacy.MsgLocked) != 2 || a.ExitCode() != -1 {
		t.Errorf("started leading %d times, locked the lead file %d times, exit code %d; want 2, 2, -1 (running)",
			a.Count(legacy.MsgStarted), a.Count(legacy.MsgLocked), a.ExitCode())
	}
	rec, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != "pod-a" || (rec.LeaderTransitions != intruder.LeaderTransitions+1 && rec.LeaderTransitions != 0) {
		t.Errorf("record %+v after the intruder's %+v", rec, intruder)
	}
	noOverlaps(t, a)
}

// TestReleasedRecordWaitedOut: a record with an empty holder, as
// client-go's ReleaseOnCancel and elector's migration mode write on
// release, is a live holder to 0.5 until a lease duration has passed
// since the replica saw it (client-go 1.14+ would take it at once).
func TestReleasedRecordWaitedOut(t *testing.T) {
	const election = "released"
	n := setup(t, election)
	c := ctx(t)
	now := metav1.Now()
	released := legacy.Record{LeaseDurationSeconds: 1, AcquireTime: now, RenewTime: now, LeaderTransitions: 3}
	writeRecord(t, c, n, election, released)

	startAt := time.Now()
	a := start(t, n, election, "pod-a", "")
	if _, err := a.WaitFor(c, legacy.MsgCampaigning, 1); err != nil {
		t.Fatal(err)
	}
	if name, err := a.LeaderName(c); err != nil || name != "" {
		t.Errorf("GET / names %q (%v) before pod-a leads, want \"\"", name, err)
	}
	ledAt, err := a.WaitLeading(c, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod-a took the released record %s after it started (ttl %s)", ms(ledAt.Sub(startAt)), ttl)
	if ledAt.Sub(startAt) < ttl {
		t.Errorf("pod-a took the released record %s after it started, before a lease duration (%s)", ms(ledAt.Sub(startAt)), ttl)
	}
	rec, err := legacy.ReadRecord(c, admin(t), n.Name, election)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != "pod-a" || (rec.LeaderTransitions != released.LeaderTransitions+1 && rec.LeaderTransitions != 0) {
		t.Errorf("record %+v after the released %+v", rec, released)
	}
}
