package main

import "github.com/KimMachineGun/automemlimit/memlimit"

// limitMemory sets GOMEMLIMIT to 90% of the container's cgroup memory limit
// (AUTOMEMLIMIT changes the ratio, a GOMEMLIMIT already set wins), so the
// garbage collector works harder as a long-running kfn process nears its
// limit instead of the heap growing until the OOM killer ends the pod. The
// Go runtime does not read cgroup limits itself. Only the manager and the
// facade call it: the runner shares its pod's memory with the function.
func limitMemory() {
	_, _ = memlimit.SetGoMemLimitWithOpts()
}
