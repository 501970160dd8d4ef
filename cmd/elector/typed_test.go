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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// typedCore adapts client-go's typed core/v1 client to the sidecar's
// eventWriter and podLabeler, so that unit tests run on client-go's fake
// clientset. The sidecar itself sends the same requests as plain JSON
// (api.go); the e2e tests run that against a real API server.
type typedCore struct{ c corev1client.CoreV1Interface }

func (t typedCore) CreateEvent(ctx context.Context, ev *event) error {
	ref := ev.InvolvedObject
	_, err := t.c.Events(ev.Metadata.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: ev.Metadata,
		InvolvedObject: corev1.ObjectReference{
			Kind: ref.Kind, APIVersion: ref.APIVersion, Namespace: ref.Namespace,
			Name: ref.Name, UID: ref.UID, ResourceVersion: ref.ResourceVersion,
		},
		Reason: ev.Reason, Message: ev.Message, Type: ev.Type,
		Source:         corev1.EventSource{Component: ev.Source.Component},
		FirstTimestamp: ev.FirstTimestamp, LastTimestamp: ev.LastTimestamp, Count: ev.Count,
		ReportingController: ev.ReportingController, ReportingInstance: ev.ReportingInstance,
	}, metav1.CreateOptions{})
	return err
}

func (t typedCore) PodNames(ctx context.Context, namespace, selector string) ([]string, error) {
	list, err := t.c.Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	return names, nil
}

func (t typedCore) PatchPod(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := t.c.Pods(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	return err
}
