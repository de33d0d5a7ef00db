package controllers

import "strings"

// Event names and patterns, as Appwrite writes them.
//
// An event is a list of segments, joined with dots:
//
//	functions.<function>.<action>                            action: create, update, delete
//	functions.<function>.executions.<execution>.<action>     action: create, update
//	<resource>.<namespace>.<name>.<action>                   action: create, update, delete
//
// A pattern is the same with any segment (a name, the resource, the
// action…) replaced by "*", which stands for exactly one segment. A pattern
// may also leave out the action to match every action. Names may hold dots
// (a ConfigMap called app.config): the pattern spells them out
// (configmaps.default.app.config.update), and "*" stands for the whole
// name. Nothing else is special; a "*" inside a segment (report-*) is no
// wildcard and matches only itself.

// eventSegments is one event, its segments in order; the last is the action.
type eventSegments []string

func (e eventSegments) String() string { return strings.Join(e, ".") }

// matchesAny reports whether one of the patterns matches the event.
func matchesAny(patterns []string, event eventSegments) bool {
	for _, p := range patterns {
		if matchEvent(p, event) {
			return true
		}
	}
	return false
}

// matchEvent matches one pattern against an event, with or without the
// event's action.
func matchEvent(pattern string, event eventSegments) bool {
	tokens := strings.Split(pattern, ".")
	return matchSegments(tokens, event) || (len(event) > 1 && matchSegments(tokens, event[:len(event)-1]))
}

// matchSegments aligns pattern tokens with event segments: "*" takes one
// whole segment, a literal segment takes as many tokens as it has
// dot-separated parts.
func matchSegments(tokens []string, event eventSegments) bool {
	for _, seg := range event {
		if len(tokens) == 0 {
			return false
		}
		if tokens[0] == "*" {
			tokens = tokens[1:]
			continue
		}
		parts := strings.Split(seg, ".")
		if len(parts) > len(tokens) {
			return false
		}
		for i, part := range parts {
			if tokens[i] != part {
				return false
			}
		}
		tokens = tokens[len(parts):]
	}
	return len(tokens) == 0
}
