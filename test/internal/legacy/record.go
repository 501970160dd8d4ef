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

package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// AnnotationKey is the annotation of the Endpoints object that holds 0.5's
// lock record.
const AnnotationKey = "control-plane.alpha.kubernetes.io/leader"

// Record is 0.5's lock record, exactly these five fields.
type Record struct {
	HolderIdentity       string      `json:"holderIdentity"`
	LeaseDurationSeconds int         `json:"leaseDurationSeconds"`
	AcquireTime          metav1.Time `json:"acquireTime"`
	RenewTime            metav1.Time `json:"renewTime"`
	LeaderTransitions    int         `json:"leaderTransitions"`
	// ResourceVersion is the Endpoints object's, not part of the record.
	ResourceVersion string `json:"-"`
}

// ParseRecord decodes the annotation's value, rejecting any field that is
// not one of 0.5's.
func ParseRecord(value string) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("unable to parse the record %q: %w", value, err)
	}
	return rec, nil
}

// RecordOf returns the record of an Endpoints object, and whether it has
// one.
func RecordOf(e *corev1.Endpoints) (Record, bool, error) {
	val, ok := e.Annotations[AnnotationKey]
	if !ok {
		return Record{}, false, nil
	}
	rec, err := ParseRecord(val)
	rec.ResourceVersion = e.ResourceVersion
	return rec, err == nil, err
}

// ReadRecord reads the record on the Endpoints object namespace/name.
// It is an error if the object or its annotation is missing.
func ReadRecord(ctx context.Context, client kubernetes.Interface, namespace, name string) (Record, error) {
	e, err := client.CoreV1().Endpoints(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Record{}, fmt.Errorf("unable to read Endpoints %s/%s: %w", namespace, name, err)
	}
	rec, ok, err := RecordOf(e)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, fmt.Errorf("Endpoints %s/%s has no annotation %s", namespace, name, AnnotationKey)
	}
	return rec, nil
}

// RecordChange is one version of the record seen by WatchRecords.
type RecordChange struct {
	Record
	Seen time.Time // when this program received it
}

// WatchRecords sends every version of the record on the Endpoints object
// namespace/name, starting with the current one if there is one, until ctx
// ends; then it closes the channel. A version without the annotation is
// skipped; so is a record that does not parse, which is reported on errs
// (buffered, never blocks). It needs list and watch on endpoints: use an
// admin client.
func WatchRecords(ctx context.Context, client kubernetes.Interface, namespace, name string) (<-chan RecordChange, <-chan error, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	list, err := client.CoreV1().Endpoints(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, nil, fmt.Errorf("unable to list Endpoints %s/%s: %w", namespace, name, err)
	}
	w, err := client.CoreV1().Endpoints(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return nil, nil, fmt.Errorf("unable to watch Endpoints %s/%s: %w", namespace, name, err)
	}
	ch := make(chan RecordChange, 64)
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	go func() {
		defer close(ch)
		defer w.Stop()
		send := func(e *corev1.Endpoints) bool {
			rec, ok, err := RecordOf(e)
			if err != nil {
				report(err)
			}
			if !ok {
				return true
			}
			select {
			case ch <- RecordChange{Record: rec, Seen: time.Now()}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for i := range list.Items {
			if !send(&list.Items[i]) {
				return
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					report(fmt.Errorf("the watch of Endpoints %s/%s ended", namespace, name))
					return
				}
				switch ev.Type {
				case watch.Added, watch.Modified:
					if e, ok := ev.Object.(*corev1.Endpoints); ok && !send(e) {
						return
					}
				case watch.Error:
					report(fmt.Errorf("watch of Endpoints %s/%s: %w", namespace, name, apierrors.FromObject(ev.Object)))
				}
			}
		}
	}()
	return ch, errs, nil
}

// Rules are the permissions 0.5 needed in the namespace of its lock: get
// and update on the Endpoints object election (it polls and writes only
// that one), and create on endpoints (for a missing object; RBAC cannot
// limit create by name). No list, no watch, no Events.
func Rules(election string) []rbac.Rule {
	return []rbac.Rule{
		{Resource: "endpoints", Verb: "create"},
		{Resource: "endpoints", Verb: "get", Name: election},
		{Resource: "endpoints", Verb: "update", Name: election},
	}
}

// ServiceAccount is the name of the ServiceAccount, Role and RoleBinding
// that Setup creates.
const ServiceAccount = "leader-elector"

// Manifests returns a ServiceAccount, a Role with Rules(election) and a
// RoleBinding, all named ServiceAccount, for sidecar.Apply.
func Manifests(election string) *sidecar.Manifests {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ServiceAccount}}
	role := sidecar.RoleOf(ServiceAccount, Rules(election))
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ServiceAccount},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ServiceAccount}},
	}
	return &sidecar.Manifests{ServiceAccount: sa, Role: role, RoleBinding: rb}
}

// Setup creates namespace ns with the ServiceAccount, Role and
// RoleBinding of Manifests(election), writes a kubeconfig with a token of
// the ServiceAccount into dir (Namespace.Kubeconfig: the credentials of a
// 0.5 Pod) and returns once the Role is in effect.
func Setup(ctx context.Context, cp *controlplane.ControlPlane, ns, election, dir string) (*sidecar.Namespace, error) {
	m := Manifests(election)
	// sidecar.Apply sets the namespaces of the objects, not of the
	// RoleBinding's subject.
	m.RoleBinding.Subjects[0].Namespace = ns
	return sidecar.Apply(ctx, cp, ns, m, dir)
}

// SetupIn sets up 0.5 Pods that run in the namespace of pods (which
// exists, e.g. from sidecar.Apply) and keep their lock in another
// namespace, lockNS, as the seed's did (Pods in test-leader-elector, lock
// in "default", 0.5's --election-namespace default): it creates the
// ServiceAccount ServiceAccount in pods' namespace with a kubeconfig in
// dir, creates lockNS unless it exists, and in it the Role and RoleBinding
// of Manifests(election) for that ServiceAccount. It returns the
// ServiceAccount's Namespace once the Role is in effect; start the
// replicas with its Kubeconfig and Options.Namespace = lockNS.
func SetupIn(ctx context.Context, cp *controlplane.ControlPlane, pods *sidecar.Namespace, lockNS, election, dir string) (*sidecar.Namespace, error) {
	n, err := pods.AddServiceAccount(ctx, cp, ServiceAccount, dir)
	if err != nil {
		return nil, err
	}
	m := Manifests(election)
	m.RoleBinding.Subjects[0].Namespace = pods.Name
	if err := n.GrantIn(ctx, lockNS, m); err != nil {
		return nil, err
	}
	return n, nil
}
