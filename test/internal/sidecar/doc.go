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
