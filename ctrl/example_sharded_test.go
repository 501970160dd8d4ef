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

package ctrl_test

import (
	"context"
	"fmt"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	electorctrl "github.com/elector-dev/elector/ctrl"
)

// annotator writes the shard and fencing token that reconciled each
// ConfigMap into an annotation.
type annotator struct{ client client.Client }

func (a annotator) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	term, _ := electorctrl.TermFrom(ctx) // the shard's fencing token
	r, _ := electorctrl.RangeFrom(ctx)   // the shard's hash range
	var cm corev1.ConfigMap
	if err := a.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["example.dev/reconciled-by"] = fmt.Sprintf("%d/%d", r.Index, term.Token)
	// A conflict is retried with a backoff by the controller.
	return ctrl.Result{}, a.client.Update(ctx, &cm)
}

// Example_sharded scales a ConfigMap operator out: every replica runs
// this, the replicas share the 8 hash ranges of the UIDs, and each lists
// and watches only the ConfigMaps of the ranges it owns (all of them,
// filtered on its side, when the API server's ShardedListAndWatch gate is
// off). It needs a cluster, so it has no Output.
func Example_sharded() {
	shards, _ := strconv.Atoi(os.Getenv("SHARDS")) // the same in every replica; 0 is refused
	mgr, err := electorctrl.NewShardedManager(ctrl.GetConfigOrDie(), ctrl.Options{
		HealthProbeBindAddress: ":8081",
	}, electorctrl.ShardedOptions{
		Group:    "configmap-annotator",
		Shards:   shards,
		Identity: os.Getenv("POD_NAME"), // default: the host name
	}, func(mgr manager.Manager, r electorctrl.Range) error {
		// One manager per owned shard: its cache holds the range's
		// ConfigMaps only, and its client reads from that cache.
		return ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).Complete(annotator{client: mgr.GetClient()})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := electorctrl.AddHealthChecks(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Start returns when the signal came and every shard was handed on,
	// or on an error a restart may fix: exit either way.
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
