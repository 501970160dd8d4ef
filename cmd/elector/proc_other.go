//go:build !linux

package main

import (
	"log/slog"
	"syscall"
)

// setSubreaper is Linux-only; elsewhere orphans go to init as usual.
func setSubreaper(*slog.Logger) {}

// commandAttr puts the command in its own process group. Only Linux can
// also tie its life to the watchdog's.
func commandAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
