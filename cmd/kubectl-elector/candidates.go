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
	"context"
	"fmt"
	"sort"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A handoff names its target by identity, and nothing in the Lease says
// which candidates are running: a typo, or a target that has stopped,
// would make the holder stop its work and hand the Lease to nobody, who
// leads only after a whole lease duration. So handoff checks first what
// the cluster shows of the candidates: the elector sidecar's identity is
// its Pod's name ($POD_NAME), and its Pod is Ready once it has read the
// Lease, leader or not (/readyz). --force skips the check, for
// candidates whose identities are not Pod names (library users).

// checkCandidates refuses (exit 7) a handoff of l to to ("" for anyone
// else) that no Ready Pod shows would be taken up. n is the handoff's
// need, for a denied Pod read.
func (a *app) checkCandidates(ctx context.Context, k *kube, l *coordinationv1.Lease, to string, n need) error {
	ns, holder := l.Namespace, holderOf(l)
	id := fmt.Sprintf("%s/%s", ns, l.Name)
	gap := fmt.Sprintf("for its lease duration (%s)", durationCell(judge(l, k.date.now()).LeaseDuration))
	pods := k.core.Pods(ns)
	if to != "" {
		n.what = fmt.Sprintf("check that the target %q is a running candidate (get Pod %s/%s)", to, ns, to)
		p, err := pods.Get(ctx, to, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fail(ExitCannotHandOff, "refusing to hand %s to %q: there is no Pod %q in namespace %s, so nothing shows that a candidate %q is running, and a target that never takes the Lease leaves it without a leader %s. Check the name (the sidecar's identity is its Pod name; kubectl get pods -n %s), or pass --force if %q is a running candidate whose identity is not a Pod name",
				id, to, to, ns, to, gap, ns, to)
		case err != nil:
			return a.apiErr(ctx, err, n)
		}
		if why := notLive(p); why != "" {
			return fail(ExitCannotHandOff, "refusing to hand %s to %q: its Pod %s, so it would not take the Lease, which would stay without a leader %s. Wait until it is Ready, name another candidate, or pass --force",
				id, to, why, gap)
		}
		return nil
	}

	n.what = fmt.Sprintf("find the other candidates (get Pod %s/%s)", ns, holder)
	hp, err := pods.Get(ctx, holder, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fail(ExitCannotHandOff, "refusing to hand %s to anyone else: the holder %q is not a Pod in namespace %s, so the other candidates cannot be found as the Ready Pods of its workload; name the target with --to ID, or pass --force to ask anyway",
			id, holder, ns)
	case err != nil:
		return a.apiErr(ctx, err, n)
	}
	wl := workloadOf(hp)
	if wl == "" {
		return fail(ExitCannotHandOff, "refusing to hand %s to anyone else: the holder's Pod %s has no controller (Deployment, StatefulSet, ...), so no other candidate can be found as a Ready Pod of its workload; name the target with --to ID, or pass --force to ask anyway",
			id, holder)
	}
	n.what = fmt.Sprintf("find the other candidates (list Pods in %s)", ns)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return a.apiErr(ctx, err, n)
	}
	var live []string
	for i := range list.Items {
		p := &list.Items[i]
		if p.Name != holder && workloadOf(p) == wl && notLive(p) == "" {
			live = append(live, p.Name)
		}
	}
	if len(live) == 0 {
		return fail(ExitCannotHandOff, "refusing to hand %s to anyone else: %s has no other Ready Pod, so no other candidate would take the Lease and %s would take it back after releasing it. Scale %s up first, or pass --force to ask anyway",
			id, wl, holder, wl)
	}
	sort.Strings(live)
	fmt.Fprintf(a.stderr, "Other candidates (Ready Pods of %s): %s.\n", wl, strings.Join(live, ", "))
	return nil
}

// notLive says why Pod p does not run a candidate that would take a
// Lease ("is terminating"), or "" when it is Ready.
func notLive(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return fmt.Sprintf("%s is terminating", p.Name)
	case p.Status.Phase != corev1.PodRunning:
		return fmt.Sprintf("%s is %s, not Running", p.Name, orNone(string(p.Status.Phase)))
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return fmt.Sprintf("%s is not Ready (%s)", p.Name, orNone(c.Reason))
		}
	}
	return fmt.Sprintf("%s is not Ready", p.Name)
}

// workloadOf names the workload that runs Pod p, "Deployment/NAME",
// "StatefulSet/NAME" or the like, from its controller ownerReference; ""
// for a Pod without one. A ReplicaSet of a Deployment is named after the
// Deployment (its name less the pod-template-hash), so that the Pods of
// the old and the new ReplicaSet of a rollout are one workload.
func workloadOf(p *corev1.Pod) string {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return ""
	}
	if h := p.Labels["pod-template-hash"]; ref.Kind == "ReplicaSet" && h != "" && strings.HasSuffix(ref.Name, "-"+h) {
		return "Deployment/" + strings.TrimSuffix(ref.Name, "-"+h)
	}
	return ref.Kind + "/" + ref.Name
}
