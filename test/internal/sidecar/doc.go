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

// Package sidecar runs the elector sidecar (cmd/elector) as real processes
// against a test control plane, set up from the kustomize manifests in
// deploy/, for the end-to-end tests (test/e2e) and the demo
// (test/cmd/demo), which share this code path.
//
// It builds the binary ([Build]), renders a kustomization in process, as
// `kubectl kustomize` does ([Render]), creates its ServiceAccount, Role and
// RoleBinding in a namespace and writes a kubeconfig holding that
// ServiceAccount's token ([Apply]), and starts replicas with it ([Start]):
// each in its own process group, killed with the calling process, with its
// HTTP address read from its log and clients for its endpoints.
package sidecar
