package main

import (
	"errors"
	"testing"
)

func TestParseShards(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		msg  string // "" = valid
	}{
		{"valid", []string{"--election=workers", "--shards=12", "--", "sleep", "1"}, nil, ""},
		{"zero", []string{"--election=workers", "--shards=0"}, nil, "elector: --shards=0: must be a whole number from 1 to 1024"},
		{"not a number", []string{"--election=workers", "--shards=many"}, nil, "elector: --shards=many: must be a whole number from 1 to 1024"},
		{"too many", []string{"--election=workers", "--shards=1025"}, nil, "elector: --shards=1025: must be a whole number from 1 to 1024"},
		{
			"group with a dot",
			[]string{"--election=my.workers", "--shards=4"},
			nil,
			"elector: --election=my.workers: with --shards it names the group and must be a DNS-1123 label of at most 40 characters (its Leases are NAME-shards, NAME-coordinator and NAME-m-<hash>)",
		},
		{
			"with a leader label",
			[]string{"--election=workers", "--shards=4", "--leader-label=a=b"},
			podEnv,
			"elector: --shards cannot be combined with --leader-label: every replica owns shards; select the Pods by another label",
		},
		{
			"with migration",
			[]string{"--election=workers", "--shards=4", "--migrate-from=endpoints"},
			nil,
			"elector: --shards cannot be combined with --migrate-from: a sharded group has no old lock to migrate from",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, fakeEnv(tc.env))
			if tc.msg == "" {
				if err != nil || c.shards != 12 {
					t.Fatalf("parseConfig: %v, shards %d; want 12", err, c.shards)
				}
				sets := requiredPermissions(c)
				if len(sets) != 1 || len(sets[0].rules) != 5 {
					t.Fatalf("sharded mode needs %v, want the 5 shared Lease rules", sets)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) || ue.code != ExitConfig || err.Error() != tc.msg {
				t.Fatalf("parseConfig: %v\nwant: %s (exit %d)", err, tc.msg, ExitConfig)
			}
		})
	}
}
