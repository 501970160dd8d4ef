//go:build !linux

package main

import "log/slog"

// setSubreaper is Linux-only; elsewhere orphans go to init as usual.
func setSubreaper(*slog.Logger) {}
