package main

// automemlimit sets GOMEMLIMIT to 90% of the container's cgroup memory
// limit (AUTOMEMLIMIT changes the ratio, GOMEMLIMIT overrides it), so the
// garbage collector works harder as the manager nears its limit instead of
// the heap growing until the OOM killer ends the pod. The Go runtime does
// not read cgroup limits itself. Without a limit it changes nothing.
import _ "github.com/KimMachineGun/automemlimit"
