package main

import (
	"log/slog"
	"syscall"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// setSubreaper makes orphaned descendants of the command children of the
// watchdog, which reaps them, instead of the elector (PID 1 in a
// container, which does not reap unknown children).
func setSubreaper(log *slog.Logger) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		log.Warn("Unable to become child subreaper", "error", errno)
	}
}

// commandAttr puts the command in its own process group, and has the
// kernel SIGKILL it should the watchdog itself die (a crash, the OOM
// killer), so that it never runs unsupervised.
func commandAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
