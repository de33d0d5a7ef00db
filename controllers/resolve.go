package controllers

import (
	"fmt"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// resolvedFunction is what a Function's pod needs, with the runtime catalog applied.
type resolvedFunction struct {
	Image   string
	Command []string
	// Runner is the runner's path in Image; empty when the pod must bring it in.
	Runner string
	// ProjectID is the Appwrite ID of the Function's project namespace.
	ProjectID string
}

// problem is a reason a Function cannot run, as a condition reason and a message.
type problem struct {
	Reason  string
	Message string
}

func (p *problem) Error() string { return p.Message }

// resolveFunction applies the runtime catalog: the command run is the
// function's command (or its runtime's) followed by the entrypoint.
func resolveFunction(fn *fnv1.Function, catalog RuntimeCatalog) (resolvedFunction, *problem) {
	var out resolvedFunction
	base := fn.Spec.Command
	if fn.Spec.Runtime != "" {
		rt, ok := catalog[fn.Spec.Runtime]
		if !ok {
			return out, &problem{fnv1.ReasonRuntimeUnknown, fmt.Sprintf("runtime %q is not in the operator's runtime catalog", fn.Spec.Runtime)}
		}
		out.Image, out.Runner = rt.Image, rt.Runner
		if len(base) == 0 {
			base = rt.Command
		}
	} else {
		out.Image = fn.Spec.Image
	}
	out.Command = append(append([]string{}, base...), nonEmpty(fn.Spec.Entrypoint)...)
	if len(out.Command) == 0 {
		return out, &problem{fnv1.ReasonNoCommand, "the function has no command: set command or entrypoint (or use a runtime with a command)"}
	}
	return out, nil
}

// codeNotStored is the Function's inline code that is too large to store,
// or that the API server refused to store (its Ready condition says so for
// the current generation): its pods would wait for a code Secret that never
// comes.
func codeNotStored(fn *fnv1.Function) *problem {
	if code := fn.Spec.Code; code != nil && code.Inline != nil {
		if p := inlineCodeTooLarge(code.Inline); p != nil {
			return p
		}
	}
	c := meta.FindStatusCondition(fn.Status.Conditions, fnv1.FunctionReady)
	if c == nil || c.ObservedGeneration != fn.Generation || c.Reason != fnv1.ReasonCodeSyncFailed {
		return nil
	}
	return &problem{c.Reason, c.Message}
}

// scheduleProblem validates the schedule the way the schedule controller
// reads it, so a Function is Ready only if its schedule can fire.
func scheduleProblem(fn *fnv1.Function) *problem {
	if fn.Spec.Schedule == "" {
		return nil
	}
	if _, err := parseSchedule(fn.Spec.Schedule, fn.Spec.TimeZone); err != nil {
		return &problem{fnv1.ReasonInvalidSchedule, fmt.Sprintf("schedule %q (time zone %q): %v", fn.Spec.Schedule, fn.Spec.TimeZone, err)}
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
