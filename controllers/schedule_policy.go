package controllers

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// The schedule policy: pure functions of the schedule, the clock and what
// already ran, so they are table-tested without an API server.

// parseSchedule reads a Function's cron schedule in its time zone.
//
//   - Five fields (minute hour day-of-month month day-of-week) or a
//     descriptor (@hourly, @daily, …), read in timeZone, else in the zone of
//     a CRON_TZ= prefix, else in UTC (never the operator's local zone).
//   - "@every <duration>" of at least a minute ticks at the multiples of the
//     duration since the Unix epoch, so its ticks do not depend on when the
//     operator started.
//   - On the day clocks go back, a wall time that happens twice fires once
//     (at its first occurrence) unless the schedule names every hour; on the
//     day clocks go forward, a wall time that does not exist does not fire
//     (as for Kubernetes CronJobs).
func parseSchedule(schedule, timeZone string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(schedule)
	if err != nil {
		return nil, err
	}
	switch s := s.(type) {
	case *cron.SpecSchedule:
		spec := *s
		switch {
		case timeZone != "":
			if spec.Location, err = time.LoadLocation(timeZone); err != nil {
				return nil, err
			}
		case spec.Location == time.Local:
			spec.Location = time.UTC
		}
		return zonedSchedule{spec: &spec}, nil
	case cron.ConstantDelaySchedule:
		if s.Delay < time.Minute {
			return nil, fmt.Errorf("@every needs at least 1m, not %s", s.Delay)
		}
		return everySchedule{delay: s.Delay}, nil
	default:
		return nil, fmt.Errorf("unsupported schedule %T", s)
	}
}

// zonedSchedule is a cron spec read in its location, firing once for a wall
// time that the end of summer time repeats.
type zonedSchedule struct{ spec *cron.SpecSchedule }

// allHours is the spec's hour mask when it names every hour.
const allHours = 1<<24 - 1

func (z zonedSchedule) Next(t time.Time) time.Time {
	n := z.spec.Next(t)
	if z.spec.Hour&allHours == allHours {
		// Hourly (or finer) schedules follow elapsed time, as cron does.
		return n
	}
	for !n.IsZero() && repeatedWallTime(n.In(z.spec.Location)) {
		n = z.spec.Next(n)
	}
	return n
}

// repeatedWallTime reports whether the wall-clock minute of t already
// happened earlier that day, because the clocks went back in between.
func repeatedWallTime(t time.Time) bool {
	for back := 15 * time.Minute; back <= 3*time.Hour; back += 15 * time.Minute {
		e := t.Add(-back).In(t.Location())
		if e.Year() == t.Year() && e.YearDay() == t.YearDay() && e.Hour() == t.Hour() && e.Minute() == t.Minute() {
			return true
		}
	}
	return false
}

// everySchedule ticks at the multiples of delay since the Unix epoch.
type everySchedule struct{ delay time.Duration }

func (e everySchedule) Next(t time.Time) time.Time {
	d := int64(e.delay / time.Second)
	next := (t.Unix()/d + 1) * d
	return time.Unix(next, 0).In(t.Location())
}

// maxCountedTicks bounds the counting of missed ticks: after long downtime
// a per-minute schedule would otherwise be walked minute by minute.
const maxCountedTicks = 100

// ticksBetween returns the latest tick in (after, now] and how many ticks
// that interval holds, counted up to maxCountedTicks.
func ticksBetween(s cron.Schedule, after, now time.Time) (latest time.Time, count int) {
	if !after.Before(now) {
		return time.Time{}, 0
	}
	for t := s.Next(after); !t.IsZero() && !t.After(now); t = s.Next(t) {
		latest, count = t, count+1
		if count == maxCountedTicks {
			break
		}
	}
	if count < maxCountedTicks {
		return latest, count
	}
	// Too many to walk: look back from now in widening windows instead.
	for window := time.Minute; ; window *= 2 {
		from := now.Add(-window)
		if !from.After(latest) {
			from = latest
		}
		var found time.Time
		for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
			found = t
		}
		if !found.IsZero() {
			return found, count
		}
		if from.Equal(latest) {
			return latest, count
		}
	}
}

// tickPlan is what the schedule controller does now.
type tickPlan struct {
	// Run is the tick to run now; zero if none.
	Run time.Time
	// Missed counts the ticks that passed without running and never will
	// (up to maxCountedTicks): all but the latest, or all of them when the
	// latest is past the starting deadline.
	Missed int
	// TooLate is the latest tick, when it is past the starting deadline.
	TooLate time.Time
	// Next is the upcoming tick; zero if the schedule never fires again.
	Next time.Time
}

// planTicks decides which tick, if any, runs at now, given the last tick
// acted on (or the Function's creation): at most one run for all the ticks
// missed since, the latest, and only within the starting deadline, so an
// operator that was down never replays a storm of runs.
func planTicks(s cron.Schedule, last, now time.Time, startingDeadlineSeconds *int64) tickPlan {
	p := tickPlan{Next: s.Next(now)}
	latest, n := ticksBetween(s, last, now)
	if n == 0 {
		return p
	}
	if d := startingDeadlineSeconds; d != nil && now.Sub(latest) > time.Duration(*d)*time.Second {
		p.TooLate, p.Missed = latest, n
		return p
	}
	p.Run, p.Missed = latest, n-1
	return p
}

// tickName is the Execution a tick creates. It is the same for every
// replica and after every restart, so creating it twice fails with
// AlreadyExists instead of running the tick twice.
func tickName(function string, tick time.Time) string {
	return shortName(fmt.Sprintf("%s-%d", function, tick.Unix()/60), "", maxJobNameLength)
}
