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
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/clock"
)

// displayName is how the plugin is invoked: every usage line starts
// with it (the krew naming guide).
const displayName = "kubectl elector"

// exitError ends a command with a code and one message for stderr
// (possibly several lines, such as a Role to apply).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// usageErr is a bad command line.
func usageErr(cmd *cobra.Command, format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...) + "; see " + cmd.CommandPath() + " -h"}
}

// app is the state the commands share.
type app struct {
	stdout, stderr io.Writer
	flags          *genericclioptions.ConfigFlags
	clock          clock.WithTicker
	// kube is built on first use from flags.
	kube *kube
}

// run is the plugin without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&app{stdout: stdout, stderr: stderr, clock: clock.RealClock{}}).run(ctx, args)
}

// run runs the command line args with a's writers, clock and (when set)
// clients.
func (a *app) run(ctx context.Context, args []string) int {
	stdout, stderr := a.stdout, a.stderr
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: unknown command or flag, bad flag value,
		// wrong number of arguments.
		ee = &exitError{code: ExitUsage, msg: oneLine(err) + "; see " + displayName + " -h"}
	}
	msg := ee.msg
	if !strings.HasPrefix(msg, displayName+":") && !strings.Contains(msg, "\n") {
		msg = displayName + ": " + msg
	}
	fmt.Fprintln(stderr, strings.TrimRight(msg, "\n"))
	return ee.code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-elector",
		Short: "Show and move the leaders of Lease-based leader elections",
		Long: `kubectl elector shows every leader election on coordination.k8s.io/v1 Leases
(elector's, client-go's, kube-system's), its holder and whether the holder is
live, the recent holders, changes as they happen, the assignment of sharded
groups, and moves leadership on purpose: a planned handoff takes
milliseconds where deleting the leader's Pod takes the lease duration.

Exit codes: 0 ok; 1 unexpected API error; 2 bad command line; 3 no or bad
kubeconfig; 4 you lack a permission (the Role is printed); 5 API server
unreachable or credentials rejected; 6 Lease not found; 7 handoff refused
(client-go or no live holder, or no Ready Pod for the target); 8 handoff
timed out; 9 (why) the subject lacks permissions.`,
		Version:       currentVersion().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: displayName},
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("kubectl-elector {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErr(cmd, "%s", oneLine(err))
	})
	// --version without cobra's -v shorthand, which kubectl users know as
	// the log verbosity.
	root.Flags().Bool("version", false, "print the version and exit")
	a.flags = genericclioptions.NewConfigFlags(true)
	a.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(a.listCommand(), a.statusCommand(), a.watchCommand(), a.handoffCommand(), a.whyCommand(), a.shardsCommand(), a.versionCommand())
	for _, c := range root.Commands() {
		if f := c.RunE; f != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error { return asFailure(f(cmd, args)) }
		}
	}
	return root
}

// exactArgs is cobra.ExactArgs with the one-line usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if len(args) < n {
				return usageErr(cmd, "missing %s", what)
			}
			return usageErr(cmd, "unexpected argument %q", args[n])
		}
		return nil
	}
}

// namespace is -n, else the kubeconfig context's namespace, else
// "default".
func (a *app) namespace() (string, error) {
	ns, _, err := a.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", configErr(err)
	}
	return ns, nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// asFailure makes an error a command returned an exit error: its own, or
// ExitFailure. (Errors that are not exit errors reach run only from
// cobra itself, and are usage errors.)
func asFailure(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitError{code: ExitFailure, msg: oneLine(err)}
}

// asExit is errors.As for *exitError.
func asExit(err error, target **exitError) bool { return errors.As(err, target) }
