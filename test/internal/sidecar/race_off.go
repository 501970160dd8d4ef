//go:build !race

package sidecar

// RaceEnabled reports whether this program was built with -race; [Build]
// then builds elector with -race too.
const RaceEnabled = false
