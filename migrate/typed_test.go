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

package migrate_test

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/elector-dev/elector/migrate"
)

// typedObjects implements migrate.Objects over client-go's typed core/v1
// client, so that the unit tests can run on client-go's fake clientset
// (whose RESTClient is nil). Production code uses migrate.REST; the e2e
// tests run it against a real API server.
type typedObjects struct{ c corev1client.CoreV1Interface }

func (t typedObjects) Get(ctx context.Context, kind migrate.Kind, ns, name string) (*metav1.ObjectMeta, error) {
	if kind == migrate.ConfigMaps {
		o, err := t.c.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return &o.ObjectMeta, nil
	}
	o, err := t.c.Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return &o.ObjectMeta, nil
}

func (t typedObjects) Create(ctx context.Context, kind migrate.Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error) {
	if kind == migrate.ConfigMaps {
		o, err := t.c.ConfigMaps(meta.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: *meta}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		return &o.ObjectMeta, nil
	}
	o, err := t.c.Endpoints(meta.Namespace).Create(ctx, &corev1.Endpoints{ObjectMeta: *meta}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &o.ObjectMeta, nil
}

// SetAnnotation writes the whole object back with meta's resourceVersion;
// the fixture's reactor answers 409 for a stale one, as the API server does.
func (t typedObjects) SetAnnotation(ctx context.Context, kind migrate.Kind, meta *metav1.ObjectMeta, key, value string) (*metav1.ObjectMeta, error) {
	m := meta.DeepCopy()
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[key] = value
	if kind == migrate.ConfigMaps {
		cur, err := t.c.ConfigMaps(m.Namespace).Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cur.ObjectMeta = *m
		o, err := t.c.ConfigMaps(m.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return nil, err
		}
		return &o.ObjectMeta, nil
	}
	cur, err := t.c.Endpoints(m.Namespace).Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cur.ObjectMeta = *m
	o, err := t.c.Endpoints(m.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return &o.ObjectMeta, nil
}
