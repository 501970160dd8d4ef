package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	goV := runtime.Version()
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}
	tests := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		ok              bool
		want            string
	}{
		{"ldflags win", "v0.2.0", "deadbeef", bi, true, "v0.2.0 (commit deadbeef, " + goV + ")"},
		{"build info", "", "", bi, true, "v0.3.0 (commit abc123, " + goV + ")"},
		{"nothing", "", "", nil, false, "(devel) (commit unknown, " + goV + ")"},
		{"empty build info", "", "", &debug.BuildInfo{}, true, "(devel) (commit unknown, " + goV + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(tt.version, tt.commit, tt.bi, tt.ok).String(); got != tt.want {
				t.Errorf("read() = %q, want %q", got, tt.want)
			}
		})
	}
}
